{
  "targets": [{
    "target_name": "accelnl_sock",
    "sources": ["nlsock.c"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  }]
}
