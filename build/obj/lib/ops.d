build/obj/lib/ops.o: lib/ops.c lib/internal.h include/lazyneuron.h \
 lib/../kernels/kernels.h
lib/internal.h:
include/lazyneuron.h:
lib/../kernels/kernels.h:
