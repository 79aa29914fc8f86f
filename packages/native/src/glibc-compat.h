// Force-included (-include) into the prebuilt linux-x64 addon only (scripts/prebuild.mjs): binds the symbols a new
// toolchain would take at their newest versions to their oldest ones, so one binary built on glibc 2.36 / GCC 12
// loads on glibc >= 2.17 with libstdc++ >= GCC 6. The prebuild script lists any symbol that still needs more.
#ifndef VISTUNE_GLIBC_COMPAT_H_
#define VISTUNE_GLIBC_COMPAT_H_
#if defined(__linux__) && defined(__x86_64__)
// libpthread's symbols moved into libc in glibc 2.34 under a new version; the old one stays exported.
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@GLIBC_2.2.5");
#ifdef __cplusplus
// GCC 12's libstdc++ added condition_variable::wait@GLIBCXX_3.4.30 beside the original, same function.
__asm__(
    ".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
    "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
#endif
#endif
#endif  // VISTUNE_GLIBC_COMPAT_H_
