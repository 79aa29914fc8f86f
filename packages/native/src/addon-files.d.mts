// Types of addon-files.mjs (plain JavaScript so the install script can run it without a TypeScript build).
export declare const ADDON_FILE: string;
export declare const PREBUILD_META_FILE: string;
export declare const PREBUILD_COMMAND: string;
export declare function addonSourceFiles(packageRoot: string): string[];
export declare function addonSourceHash(packageRoot: string): string | null;
export declare function runtimeGlibc(): string | null;
export declare function prebuildTarget(platform: string, arch: string, libc: 'glibc' | 'musl' | null): string;
export declare function compareVersions(a: string, b: string): -1 | 0 | 1;
export declare function checkAddon<T>(addon: T): T;
export declare function prebuildProblem(
  addonPath: string,
  packageRoot: string,
  glibc: string | null,
): string | null;
