build/obj/lib/api.o: lib/api.c lib/internal.h include/lazyneuron.h \
 lib/../kernels/kernels.h
lib/internal.h:
include/lazyneuron.h:
lib/../kernels/kernels.h:
