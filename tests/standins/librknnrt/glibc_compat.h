/*
 * glibc_compat.h: keeps the aarch64 builds loadable on older boards.
 *
 * Debian 12's cross toolchain links against glibc 2.36, where the pthread and dl functions
 * moved into libc under a new symbol version (GLIBC_2.34). A board with an older glibc
 * (Ubuntu 20.04 has 2.31) would refuse such a library. Binding these calls to the aarch64
 * base version (GLIBC_2.17, present in every aarch64 glibc, 2.34+ included) avoids that.
 * The x86_64 builds only run on this machine and need nothing.
 */
#ifndef RKBENCH_GLIBC_COMPAT_H
#define RKBENCH_GLIBC_COMPAT_H
#if defined(__aarch64__) && defined(__linux__)
#define RKBENCH_OLD_SYMBOL(name) __asm__(".symver " #name "," #name "@GLIBC_2.17");
RKBENCH_OLD_SYMBOL(pthread_create)
RKBENCH_OLD_SYMBOL(pthread_join)
RKBENCH_OLD_SYMBOL(pthread_mutex_lock)
RKBENCH_OLD_SYMBOL(pthread_mutex_unlock)
RKBENCH_OLD_SYMBOL(pthread_mutex_init)
RKBENCH_OLD_SYMBOL(pthread_mutex_destroy)
RKBENCH_OLD_SYMBOL(pthread_cond_wait)
RKBENCH_OLD_SYMBOL(pthread_cond_broadcast)
RKBENCH_OLD_SYMBOL(pthread_barrier_init)
RKBENCH_OLD_SYMBOL(pthread_barrier_wait)
RKBENCH_OLD_SYMBOL(pthread_barrier_destroy)
RKBENCH_OLD_SYMBOL(dlopen)
RKBENCH_OLD_SYMBOL(dlsym)
RKBENCH_OLD_SYMBOL(dlerror)
RKBENCH_OLD_SYMBOL(dlclose)
#endif
#endif
