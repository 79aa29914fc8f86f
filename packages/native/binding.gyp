{
  "variables": {
    "vistune_prebuild%": "false"
  },
  "targets": [
    {
      "target_name": "vistune_native",
      "sources": ["src/addon.cc", "src/sgemm.cc", "src/adamw.cc", "src/rows.cc", "src/quant.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O3", "-fno-math-errno", "-pthread", "-fvisibility=hidden"],
      "cflags_cc": ["-O3", "-fno-math-errno", "-std=c++17", "-pthread", "-fvisibility=hidden"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS=='linux' and vistune_prebuild=='true'", {
          "cflags": ["-include", "<(module_root_dir)/src/glibc-compat.h"],
          "cflags_cc": ["-include", "<(module_root_dir)/src/glibc-compat.h"],
          "ldflags": ["-Wl,--strip-all"]
        }]
      ],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"] },
      "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/O2", "/std:c++17"] } }
    }
  ]
}
