build/obj/kernels/scalar.o: kernels/scalar.c kernels/kernels.h
kernels/kernels.h:
