build/obj/lib/dense.o: lib/dense.c lib/dense.h include/lazyneuron.h \
 lib/internal.h lib/../kernels/kernels.h
lib/dense.h:
include/lazyneuron.h:
lib/internal.h:
lib/../kernels/kernels.h:
