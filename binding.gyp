{
  "targets": [
    {
      "target_name": "tcp_keepalive",
      "sources": ["src-native/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-Wall", "-Wextra", "-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "conditions": [
        ["OS=='win'", {
          "sources": ["src-native/keepalive_win.cc"],
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "libraries": ["ws2_32.lib"],
          "msvs_settings": {
            "VCCLCompilerTool": {
              "AdditionalOptions": ["/guard:cf", "/sdl", "/W3", "/Qspectre"],
              "ExceptionHandling": 1
            },
            "VCLinkerTool": {
              "AdditionalOptions": ["/guard:cf", "/DYNAMICBASE", "/CETCOMPAT"]
            }
          }
        }, {
          "sources": ["src-native/keepalive_posix.cc"]
        }],
        ["OS=='mac'", {
          "xcode_settings": {
            "MACOSX_DEPLOYMENT_TARGET": "10.15",
            "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra", "-O2"]
          }
        }]
      ]
    }
  ]
}
