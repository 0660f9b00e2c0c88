// accelnl shared-memory addon: buffer objects in memfd memory that the daemon and a client both
// map, and the Unix-socket calls that hand such a file descriptor over (SCM_RIGHTS).
//
// C++ and V8's API rather than Node-API for one reason: BO memory must be a SharedArrayBuffer
// (the compute workers read and write it), and only V8's BackingStore API makes one over memory
// the addon mapped. So this addon is built for the running Node's ABI; genl/native/build.js
// builds it apart from accelnl_sock, and a Node without it simply has no mapped BOs.
//
// Errors that are data (EAGAIN on a socket, a refusal without a descriptor) come back as -errno;
// failures of a call that has no other answer (memfd_create, mmap, connect) throw with a `code`.
#include <node.h>
#include <v8.h>
#include <errno.h>
#include <mutex>
#include <unordered_set>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/un.h>

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

namespace {

// The seals a BO's memfd carries from birth: its size can never change (a shrink would turn the
// other side's accesses past the new end into SIGBUS), and the seals themselves are final.
const int BO_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

void Throw(Isolate *iso, int err, const char *syscall) {
  iso->ThrowException(node::ErrnoException(iso, err, syscall));
}

bool IntArg(const FunctionCallbackInfo<Value> &a, int i, double *out) {
  if (i >= a.Length() || !a[i]->IsNumber()) {
    a.GetIsolate()->ThrowException(v8::Exception::TypeError(
        String::NewFromUtf8Literal(a.GetIsolate(), "expected a number argument")));
    return false;
  }
  *out = a[i].As<v8::Number>()->Value();
  return true;
}

// The mappings this addon made and has not unmapped yet: release() acts on these alone, never on
// memory V8 or anyone else owns.
std::mutex mapped_lock;
std::unordered_set<void *> mapped;

void Unmap(void *data, size_t length, void *) {
  {
    std::lock_guard<std::mutex> g(mapped_lock);
    mapped.erase(data);
  }
  munmap(data, length);
}

// A SharedArrayBuffer over `size` bytes of `fd`, unmapped when the last holder (this thread or a
// worker it was posted to) lets it go. Throws and returns empty on failure.
Local<SharedArrayBuffer> MapShared(Isolate *iso, int fd, size_t size) {
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    Throw(iso, errno, "mmap");
    return Local<SharedArrayBuffer>();
  }
  {
    std::lock_guard<std::mutex> g(mapped_lock);
    mapped.insert(p);
  }
  std::shared_ptr<v8::BackingStore> bs = SharedArrayBuffer::NewBackingStore(p, size, Unmap, nullptr);
  return SharedArrayBuffer::New(iso, std::move(bs));
}

// create(size): { fd, mem }: a new sealed memfd of `size` bytes and a SharedArrayBuffer mapping it.
void Create(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double size;
  if (!IntArg(a, 0, &size)) return;
  if (!(size >= 1 && size <= 9007199254740991.0)) return Throw(iso, EINVAL, "memfd_create");
  int fd = memfd_create("accelnl-bo", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Throw(iso, errno, "memfd_create");
  if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, BO_SEALS) < 0) {
    int err = errno;
    close(fd);
    return Throw(iso, err, "ftruncate");
  }
  Local<SharedArrayBuffer> mem = MapShared(iso, fd, (size_t)size);
  if (mem.IsEmpty()) {
    close(fd);
    return;
  }
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Object> o = Object::New(iso);
  o->Set(ctx, String::NewFromUtf8Literal(iso, "fd"), v8::Integer::New(iso, fd)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "mem"), mem).Check();
  a.GetReturnValue().Set(o);
}

// map(fd, size): a SharedArrayBuffer over a BO's memfd that someone else created. Refused (EINVAL)
// unless the file is exactly `size` bytes and sealed against shrinking: otherwise its creator
// could truncate it under us, and our next access would be SIGBUS.
void Map(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double fd, size;
  if (!IntArg(a, 0, &fd) || !IntArg(a, 1, &size)) return;
  struct stat st;
  if (fstat((int)fd, &st) < 0) return Throw(iso, errno, "fstat");
  int seals = fcntl((int)fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK) || size < 1 || (double)st.st_size != size) {
    return Throw(iso, EINVAL, "map");
  }
  Local<SharedArrayBuffer> mem = MapShared(iso, (int)fd, (size_t)size);
  if (!mem.IsEmpty()) a.GetReturnValue().Set(mem);
}

// release(mem): let go of the memfd behind a SharedArrayBuffer from create() or map() now, not
// when the garbage collector gets to it (which may be minutes, the file's pages held all along).
// The range is replaced in place by fresh anonymous memory: a view still held somewhere (a compute
// worker finishing a cancelled job) reads zeros and writes to memory of its own, and never faults.
// The backing store's deleter later unmaps that. 0, or -EINVAL for a buffer this addon did not map.
void Release(const FunctionCallbackInfo<Value> &a) {
  if (a.Length() < 1 || !a[0]->IsSharedArrayBuffer()) return a.GetReturnValue().Set(-EINVAL);
  std::shared_ptr<v8::BackingStore> bs = a[0].As<SharedArrayBuffer>()->GetBackingStore();
  void *p = bs->Data();
  {
    std::lock_guard<std::mutex> g(mapped_lock);
    if (!p || !mapped.count(p)) return a.GetReturnValue().Set(-EINVAL);
  }
  void *q = mmap(p, bs->ByteLength(), PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  a.GetReturnValue().Set(q == MAP_FAILED ? -errno : 0);
}

// punch(fd, size): give the file's pages back (a hole over [0, size), its size kept): 0 or -errno.
// A mapping of it stays valid and reads zeros; pages written after that are new ones.
void Punch(const FunctionCallbackInfo<Value> &a) {
  double fd, size;
  if (!IntArg(a, 0, &fd) || !IntArg(a, 1, &size)) return;
  int r = fallocate((int)fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size);
  a.GetReturnValue().Set(r < 0 ? -errno : 0);
}

// seals(fd): the file's seals (F_GET_SEALS), or -errno.
void Seals(const FunctionCallbackInfo<Value> &a) {
  double fd;
  if (!IntArg(a, 0, &fd)) return;
  int s = fcntl((int)fd, F_GET_SEALS);
  a.GetReturnValue().Set(s < 0 ? -errno : s);
}

// A message of the one byte at `byte`, with `ctl` as its control space.
struct msghdr OneByte(struct iovec *iov, char *byte, char *ctl, size_t ctllen) {
  iov->iov_base = byte;
  iov->iov_len = 1;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = ctllen;
  return m;
}

// sendFd(sock, fd): one byte with `fd` attached (SCM_RIGHTS), without blocking. 0 or -errno.
void SendFd(const FunctionCallbackInfo<Value> &a) {
  double sock, fd;
  if (!IntArg(a, 0, &sock) || !IntArg(a, 1, &fd)) return;
  char byte = 0;
  struct iovec iov;
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr m = OneByte(&iov, &byte, ctl.buf, sizeof ctl.buf);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int f = (int)fd;
  memcpy(CMSG_DATA(c), &f, sizeof f);
  ssize_t n = sendmsg((int)sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
  a.GetReturnValue().Set(n < 0 ? -errno : 0);
}

// The address of Unix socket `name` (a leading NUL makes it abstract), and its length: exactly
// the name's bytes. (libuv pads an abstract name to the whole sun_path on some versions and not on
// others, so both ends of a map socket are made here.)
bool UnixAddr(Isolate *iso, Local<Value> v, struct sockaddr_un *sa, socklen_t *len, const char *syscall) {
  if (!v->IsString()) {
    Throw(iso, EINVAL, syscall);
    return false;
  }
  String::Utf8Value name(iso, v);
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  size_t n = (size_t)name.length();
  if (n == 0 || n > sizeof sa->sun_path) {
    Throw(iso, ENAMETOOLONG, syscall);
    return false;
  }
  memcpy(sa->sun_path, *name, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  return true;
}

// listen(name): a listening Unix stream socket bound to `name`, for net.Server#listen({ fd }).
// Throws (EADDRINUSE, ...).
void Listen(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  struct sockaddr_un sa;
  socklen_t len;
  if (a.Length() < 1 || !UnixAddr(iso, a[0], &sa, &len, "bind")) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Throw(iso, errno, "socket");
  if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 128) < 0) {
    int err = errno;
    close(fd);
    return Throw(iso, err, "bind");
  }
  a.GetReturnValue().Set(fd);
}

// connect(name): a non-blocking Unix stream socket connected to `name`. Throws on failure.
void Connect(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  struct sockaddr_un sa;
  socklen_t len;
  if (a.Length() < 1 || !UnixAddr(iso, a[0], &sa, &len, "connect")) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Throw(iso, errno, "socket");
  // Blocking connect: to a listening Unix socket it completes at once (or fails at once).
  if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
    int err = errno;
    close(fd);
    return Throw(iso, err, "connect");
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  a.GetReturnValue().Set(fd);
}

// write(fd, bytes): bytes written, or -errno.
void Write(const FunctionCallbackInfo<Value> &a) {
  double fd;
  if (!IntArg(a, 0, &fd)) return;
  if (a.Length() < 2 || !a[1]->IsArrayBufferView()) return Throw(a.GetIsolate(), EINVAL, "write");
  Local<v8::ArrayBufferView> v = a[1].As<v8::ArrayBufferView>();
  char buf[256];
  size_t n = v->CopyContents(buf, sizeof buf);
  ssize_t w = send((int)fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  a.GetReturnValue().Set(w < 0 ? -errno : (int)w);
}

// recvFd(sock): the descriptor that came with the next byte, or -errno: -EAGAIN (nothing yet),
// -ENOMSG (a byte came without one: refused), -ECONNRESET (the other side closed).
void RecvFd(const FunctionCallbackInfo<Value> &a) {
  double sock;
  if (!IntArg(a, 0, &sock)) return;
  char byte;
  struct iovec iov;
  union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } ctl;
  struct msghdr m = OneByte(&iov, &byte, ctl.buf, sizeof ctl.buf);
  ssize_t n = recvmsg((int)sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return a.GetReturnValue().Set(-errno);
  if (n == 0) return a.GetReturnValue().Set(-ECONNRESET);
  int got = -ENOMSG;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int f;
      memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      if (got < 0) got = f; else close(f);  // one is expected; never leak extras
    }
  }
  a.GetReturnValue().Set(got);
}

// peerUid(sock): the uid of the process at the other end of a Unix socket (SO_PEERCRED), or -errno.
void PeerUid(const FunctionCallbackInfo<Value> &a) {
  double sock;
  if (!IntArg(a, 0, &sock)) return;
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt((int)sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) return a.GetReturnValue().Set(-errno);
  a.GetReturnValue().Set((double)cr.uid);
}

void Close(const FunctionCallbackInfo<Value> &a) {
  double fd;
  if (!IntArg(a, 0, &fd)) return;
  a.GetReturnValue().Set(close((int)fd) < 0 ? -errno : 0);
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  static const struct { const char *name; v8::FunctionCallback fn; } fns[] = {
    { "create", Create }, { "map", Map }, { "release", Release }, { "punch", Punch }, { "seals", Seals },
    { "sendFd", SendFd }, { "listen", Listen }, { "connect", Connect }, { "write", Write },
    { "recvFd", RecvFd }, { "peerUid", PeerUid }, { "close", Close },
  };
  for (const auto &f : fns) NODE_SET_METHOD(exports, f.name, f.fn);
}
