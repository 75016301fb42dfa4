build/obj/kernels/avx2.o: kernels/avx2.c kernels/kernels.h
kernels/kernels.h:
