{
  "targets": [{
    "target_name": "accelnl_shm",
    "sources": ["shm.cc"],
    "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"]
  }]
}
