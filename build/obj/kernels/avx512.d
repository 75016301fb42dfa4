build/obj/kernels/avx512.o: kernels/avx512.c kernels/kernels.h
kernels/kernels.h:
