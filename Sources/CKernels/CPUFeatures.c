// Which version of each kernel runs: decided once, when the library is loaded (no race between threads).
#include "CKernels.h"

static int avx512 = 0, vnni = 0;

__attribute__((constructor)) static void detect_features(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    vnni = avx512 && __builtin_cpu_supports("avx512vnni");
#endif
}

int eaw_kernels_use_avx512(void) { return avx512; }
int eaw_kernels_use_vnni(void) { return vnni; }
