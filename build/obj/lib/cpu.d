build/obj/lib/cpu.o: lib/cpu.c lib/internal.h include/lazyneuron.h \
 lib/../kernels/kernels.h
lib/internal.h:
include/lazyneuron.h:
lib/../kernels/kernels.h:
