// accelnl socket addon: AF_NETLINK datagram sockets for Node, via Node-API + uv_poll.
// Exists for what the npm `netlink` package lacks: SCM_CREDENTIALS on every datagram,
// one JS callback per wake-up for a whole recvmmsg batch, and sendmmsg.
// Plain C, no node-addon-api. Errors that are data (EAGAIN, ECONNREFUSED, ENOBUFS on
// send) come back as -errno; setup failures (socket, bind) throw with a `code`.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <linux/netlink.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#define META_STRIDE 8  // offset, length, port, groups, uid, gid, pid, full length
#define MAX_SEND_BATCH 64
// Busy polling never keeps the event loop away longer than this per wake-up (timers, other sockets).
#define BUSY_SLICE_NS 1000000L
#define MAX_BUSY_US 1000

typedef struct {
  int fd;
  napi_env env;
  uv_poll_t *poll;          // non-NULL while receiving; freed by its own close callback
  napi_ref cb, self, buf_ref, meta_ref;
  napi_async_context actx, cb_actx;  // cb_actx: the one a running callback uses
  int defer_destroy;                 // stopped during that callback: destroy cb_actx after it
  uint8_t *buf;
  int32_t *meta;
  size_t slot, nslots;
  struct mmsghdr *msgs;     // nslots each of: header, iovec, address, control space
  struct iovec *iov;
  struct sockaddr_nl *addr;
  uint8_t *ctl;
  int64_t busy_ns;          // after a batch, keep reading this long before going back to sleep (0: off)
  double busy_hits;         // batches read while busy polling
} sock_t;

#define CTL_SPACE CMSG_SPACE(sizeof(struct ucred))

#define CHECK(call) do { if ((call) != napi_ok) { throw_last(env); return NULL; } } while (0)

static void throw_last(napi_env env) {
  const napi_extended_error_info *info;
  bool pending;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "napi call failed");
}

// Throws Error("<syscall>: <strerror> (<CODE>)") with .code, .errno (negative, like Node), .syscall.
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[160];
  napi_value e, m, v;
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, strerror(err), uv_err_name(-err));
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "code", v);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

// Arguments: fetches up to n args; returns NULL (with exception) if fewer were given.
static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < n) { napi_throw_type_error(env, NULL, "too few arguments"); return 0; }
  return 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number");
    return 0;
  }
  return 1;
}

static sock_t *get_sock(napi_env env, napi_value v, int need_open) {
  sock_t *s = NULL;
  if (napi_get_value_external(env, v, (void **)&s) != napi_ok || !s) {
    napi_throw_type_error(env, NULL, "expected a socket handle");
    return NULL;
  }
  if (need_open && s->fd < 0) { throw_errno(env, EBADF, "socket closed"); return NULL; }
  return s;
}

// Any TypedArray/Buffer/ArrayBuffer -> bytes.
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  napi_is_typedarray(env, v, &is);
  if (is) {
    napi_typedarray_type t; size_t n, off; napi_value ab; void *p;
    if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return 0;
    size_t esz = (t == napi_int8_array || t == napi_uint8_array || t == napi_uint8_clamped_array) ? 1
               : (t == napi_int16_array || t == napi_uint16_array) ? 2
               : (t == napi_float64_array || t == napi_bigint64_array || t == napi_biguint64_array) ? 8 : 4;
    *data = p; *len = n * esz;
    return 1;
  }
  napi_is_arraybuffer(env, v, &is);
  if (is && napi_get_arraybuffer_info(env, v, (void **)data, len) == napi_ok) return 1;
  napi_throw_type_error(env, NULL, "expected a TypedArray or ArrayBuffer");
  return 0;
}

static int get_i32s(napi_env env, napi_value v, int32_t **data, size_t *count) {
  napi_typedarray_type t; size_t n, off; napi_value ab; void *p; bool is;
  napi_is_typedarray(env, v, &is);
  if (!is || napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok || t != napi_int32_array) {
    napi_throw_type_error(env, NULL, "expected an Int32Array");
    return 0;
  }
  *data = p; *count = n;
  return 1;
}

static void poll_closed(uv_handle_t *h) { free(h); }

// Stops receiving and drops every JS reference the receiver held.
static void stop_recv(sock_t *s) {
  if (!s->poll) return;
  uv_poll_stop(s->poll);
  uv_close((uv_handle_t *)s->poll, poll_closed);
  s->poll = NULL;
  if (s->actx == s->cb_actx) s->defer_destroy = 1;
  else napi_async_destroy(s->env, s->actx);
  napi_delete_reference(s->env, s->cb);
  napi_delete_reference(s->env, s->self);
  napi_delete_reference(s->env, s->buf_ref);
  napi_delete_reference(s->env, s->meta_ref);
  free(s->msgs); free(s->iov); free(s->addr); free(s->ctl);
  s->msgs = NULL; s->iov = NULL; s->addr = NULL; s->ctl = NULL;
}

static void close_sock(sock_t *s) {
  stop_recv(s);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  close_sock(data);  // not polling here: a polling socket holds a strong ref to itself
  free(data);
}

// open(protocol, port, groups, passcred) -> handle. Non-blocking, close-on-exec, bound.
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[4], ext;
  int64_t proto, port, groups, cred;
  if (!get_args(env, info, 4, argv) || !get_i64(env, argv[0], &proto) || !get_i64(env, argv[1], &port) ||
      !get_i64(env, argv[2], &groups) || !get_i64(env, argv[3], &cred)) return NULL;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, (int)proto);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1;
  if (cred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
    int e = errno; close(fd); return throw_errno(env, e, "setsockopt(SO_PASSCRED)");
  }
  struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = (uint32_t)port, .nl_groups = (uint32_t)groups };
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno; close(fd); return throw_errno(env, e, "bind");
  }
  sock_t *s = calloc(1, sizeof *s);
  if (!s) { close(fd); return throw_errno(env, ENOMEM, "open"); }
  s->fd = fd; s->env = env;
  if (napi_create_external(env, s, finalize, NULL, &ext) != napi_ok) { close(fd); free(s); throw_last(env); return NULL; }
  return ext;
}

// localPort(handle) -> bound port id (u32), from getsockname.
static napi_value js_local_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 1);
  if (!s) return NULL;
  struct sockaddr_nl a; socklen_t len = sizeof a;
  if (getsockname(s->fd, (struct sockaddr *)&a, &len) < 0) return throw_errno(env, errno, "getsockname");
  return num(env, a.nl_pid);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// One recvmmsg of up to nslots datagrams, without waiting: their count (0 if none), with ENOBUFS
// reported in *overrun and any other error as -errno in *err.
static int recv_batch(sock_t *s, int *overrun, int *err) {
  for (int tries = 0; tries < 4; tries++) {
    for (size_t i = 0; i < s->nslots; i++) {
      struct msghdr *m = &s->msgs[i].msg_hdr;
      m->msg_namelen = sizeof(struct sockaddr_nl);
      m->msg_controllen = CTL_SPACE;
      m->msg_flags = 0;
    }
    // MSG_TRUNC: netlink then returns the full datagram length even when the slot was smaller.
    int n = recvmmsg(s->fd, s->msgs, (unsigned)s->nslots, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == ENOBUFS) { *overrun = 1; continue; }  // reported once; queued data follows
    if (errno != EAGAIN) *err = -errno;  // e.g. a failed kernel dump; sk_err is consumed
    return 0;
  }
  return 0;
}

// The batch's metadata for JS: offset, length, sender, groups, credentials, full length.
static void fill_meta(sock_t *s, int n) {
  for (int i = 0; i < n; i++) {
    struct msghdr *m = &s->msgs[i].msg_hdr;
    int32_t *e = s->meta + (size_t)i * META_STRIDE;
    uint32_t full = s->msgs[i].msg_len;
    e[0] = (int32_t)(i * s->slot);
    e[1] = (int32_t)(full < s->slot ? full : s->slot);
    e[2] = (int32_t)s->addr[i].nl_pid;
    e[3] = (int32_t)s->addr[i].nl_groups;
    e[4] = e[5] = e[6] = -1;
    e[7] = (int32_t)full;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred u;
        memcpy(&u, CMSG_DATA(c), sizeof u);
        e[4] = (int32_t)u.uid; e[5] = (int32_t)u.gid; e[6] = (int32_t)u.pid;
      }
    }
  }
}

// Busy polling after a batch: reads without waiting until a batch (or an error) arrives, for up to
// busy_ns, never past BUSY_SLICE_NS after `start` nor past the next timer. It does not wait at all
// while the event loop has work due (an immediate such as a dump's next chunk, a closing handle,
// a timer): that work would otherwise wait for the poll. Returns recv_batch's count.
static int poll_next_batch(sock_t *s, uv_loop_t *loop, int64_t start, int *overrun, int *err) {
  *overrun = 0; *err = 0;
  uv_update_time(loop);
  int timer_ms = uv_backend_timeout(loop);  // 0: work due now; -1: no timer
  if (timer_ms == 0) return 0;
  int64_t t0 = now_ns(), end = t0 + s->busy_ns;
  if (end > start + BUSY_SLICE_NS) end = start + BUSY_SLICE_NS;
  if (timer_ms > 0 && end > t0 + (int64_t)timer_ms * 1000000) end = t0 + (int64_t)timer_ms * 1000000;
  for (int64_t t = t0; t < end; t = now_ns()) {
    int n = recv_batch(s, overrun, err);
    if (n > 0 || *overrun || *err) return n;
  }
  return 0;
}

// Drains up to nslots datagrams with one recvmmsg, then makes one JS call:
// cb(count, overrun, err). overrun=1 if the kernel reported ENOBUFS (datagrams were dropped);
// err=-errno for any other socket error (receiving stops only if the socket itself is unusable).
// With busy polling on (busyPoll), it then keeps reading for up to busy_ns for the next batch,
// and calls JS again for it, instead of going back to sleep: a client in a request loop is then
// answered without waking this process. It returns to the event loop when nothing came in that
// time, when other work is due (poll_next_batch), and after BUSY_SLICE_NS in all.
static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  sock_t *s = h->data;
  napi_env env = s->env;
  int n = 0, overrun = 0, err = 0, fatal = 0;
  if (status < 0) {
    // libuv turns EPOLLERR into UV_EBADF and stops the poll. On netlink EPOLLERR just means
    // sk_err is set, usually ENOBUFS after an overrun: read (and clear) it, then re-arm.
    int soerr = 0; socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) { err = status; fatal = 1; }
    else {
      if (soerr == ENOBUFS) overrun = 1; else if (soerr) err = -soerr;
      int r = uv_poll_start(h, UV_READABLE, on_readable);
      if (r) { err = r; fatal = 1; }
    }
  }
  if (!fatal) n = recv_batch(s, &overrun, &err);
  if (n == 0 && !overrun && !err) return;
  uv_loop_t *loop = uv_handle_get_loop((uv_handle_t *)h);
  napi_handle_scope scope;
  napi_value self, cb, recv, argv[3], result;
  napi_open_handle_scope(env, &scope);
  // `self` on the handle scope keeps the handle (and so `s`) alive if the callback closes it.
  napi_get_reference_value(env, s->self, &self);
  napi_get_reference_value(env, s->cb, &cb);
  napi_get_global(env, &recv);  // make_callback needs an object receiver
  int64_t start = 0;
  for (;;) {
    fill_meta(s, n);
    argv[0] = num(env, n); argv[1] = num(env, overrun); argv[2] = num(env, err);
    s->cb_actx = s->actx;
    napi_status st = napi_make_callback(env, s->cb_actx, recv, cb, 3, argv, &result);
    if (s->defer_destroy) napi_async_destroy(env, s->cb_actx);
    s->cb_actx = NULL; s->defer_destroy = 0;
    if (fatal && s->poll == h) stop_recv(s);
    if (st == napi_pending_exception) {
      napi_value ex;
      napi_get_and_clear_last_exception(env, &ex);
      napi_fatal_exception(env, ex);  // surfaces as 'uncaughtException', like any event handler
      break;
    }
    // Stopped or closed by the callback (s->poll is then NULL), the environment going away, or
    // not polling: back to the loop.
    if (st != napi_ok || fatal || s->poll != h || s->busy_ns <= 0) break;
    if (start == 0) start = now_ns();
    n = poll_next_batch(s, loop, start, &overrun, &err);
    if (n == 0 && !overrun && !err) break;
    if (n > 0) s->busy_hits++;
  }
  napi_close_handle_scope(env, scope);
}

// startRecv(handle, buffer, slotSize, meta Int32Array, cb): datagram i lands at i*slotSize.
// The buffer and meta array are held (referenced) until stopRecv/close.
static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[5], name, resource;
  int64_t slot;
  uint8_t *buf; size_t blen; int32_t *meta; size_t mlen;
  if (!get_args(env, info, 5, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 1);
  if (!s || !get_bytes(env, argv[1], &buf, &blen) || !get_i64(env, argv[2], &slot) ||
      !get_i32s(env, argv[3], &meta, &mlen)) return NULL;
  if (s->poll) return throw_errno(env, EALREADY, "startRecv");
  size_t nslots = slot > 0 ? blen / (size_t)slot : 0;
  if (nslots > mlen / META_STRIDE) nslots = mlen / META_STRIDE;
  if (nslots == 0) { napi_throw_range_error(env, NULL, "buffer or meta too small for one slot"); return NULL; }
  s->buf = buf; s->meta = meta; s->slot = (size_t)slot; s->nslots = nslots;
  s->msgs = calloc(nslots, sizeof *s->msgs);
  s->iov = calloc(nslots, sizeof *s->iov);
  s->addr = calloc(nslots, sizeof *s->addr);
  s->ctl = calloc(nslots, CTL_SPACE);
  s->poll = calloc(1, sizeof *s->poll);
  uv_loop_t *loop;
  if (!s->msgs || !s->iov || !s->addr || !s->ctl || !s->poll) {
    free(s->msgs); free(s->iov); free(s->addr); free(s->ctl); free(s->poll);
    s->msgs = NULL; s->iov = NULL; s->addr = NULL; s->ctl = NULL; s->poll = NULL;
    return throw_errno(env, ENOMEM, "startRecv");
  }
  for (size_t i = 0; i < nslots; i++) {
    s->iov[i].iov_base = buf + i * s->slot;
    s->iov[i].iov_len = s->slot;
    struct msghdr *m = &s->msgs[i].msg_hdr;
    m->msg_name = &s->addr[i];
    m->msg_iov = &s->iov[i];
    m->msg_iovlen = 1;
    m->msg_control = s->ctl + i * CTL_SPACE;
  }
  CHECK(napi_get_uv_event_loop(env, &loop));
  int r = uv_poll_init(loop, s->poll, s->fd);
  if (r == 0) r = uv_poll_start(s->poll, UV_READABLE, on_readable);
  if (r != 0) {
    free(s->poll); s->poll = NULL;
    return throw_errno(env, -r, "uv_poll_start");
  }
  s->poll->data = s;
  napi_create_string_utf8(env, "accelnl:netlink", NAPI_AUTO_LENGTH, &name);
  // A plain object as the async resource: AsyncLocalStorage stores a symbol on it,
  // which a (non-extensible) external cannot take.
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &s->actx);
  napi_create_reference(env, argv[4], 1, &s->cb);
  napi_create_reference(env, argv[0], 1, &s->self);
  napi_create_reference(env, argv[1], 1, &s->buf_ref);
  napi_create_reference(env, argv[3], 1, &s->meta_ref);
  return num(env, (double)nslots);
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 0);
  if (s) stop_recv(s);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 0);
  if (s) close_sock(s);
  return NULL;
}

// ref/unref(handle, on): whether a receiving socket keeps the event loop alive.
static napi_value js_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2]; int64_t on;
  if (!get_args(env, info, 2, argv) || !get_i64(env, argv[1], &on)) return NULL;
  sock_t *s = get_sock(env, argv[0], 0);
  if (s && s->poll) { if (on) uv_ref((uv_handle_t *)s->poll); else uv_unref((uv_handle_t *)s->poll); }
  return NULL;
}

static void set_dest(struct msghdr *m, struct sockaddr_nl *a, struct iovec *iov,
                     uint8_t *p, size_t len, uint32_t port, uint32_t groups) {
  memset(a, 0, sizeof *a);
  a->nl_family = AF_NETLINK; a->nl_pid = port; a->nl_groups = groups;
  iov->iov_base = p; iov->iov_len = len;
  memset(m, 0, sizeof *m);
  m->msg_name = a; m->msg_namelen = sizeof *a; m->msg_iov = iov; m->msg_iovlen = 1;
}

static int send_one(int fd, uint8_t *p, size_t len, uint32_t port, uint32_t groups) {
  struct msghdr m; struct sockaddr_nl a; struct iovec iov;
  set_dest(&m, &a, &iov, p, len, port, groups);
  for (;;) {
    if (sendmsg(fd, &m, MSG_DONTWAIT) >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

// The errno a port failed with earlier in this sendMany, or 0.
static int held_err(const int32_t *held, const int *err, size_t n, int32_t port) {
  for (size_t i = 0; i < n; i++) if (held[i] == port) return err[i];
  return 0;
}

static int held_or(int err, int overflow) { return err ? err : overflow ? -EAGAIN : 0; }

// Range check shared by send and sendMany.
static int in_range(size_t total, int64_t off, int64_t len) {
  return off >= 0 && len >= 0 && (uint64_t)off + (uint64_t)len <= total;
}

// send(handle, bytes, offset, length, port, groups) -> 0 or -errno. Never throws on delivery errors.
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  uint8_t *p; size_t plen; int64_t off, len, port, groups;
  if (!get_args(env, info, 6, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 0);
  if (!s || !get_bytes(env, argv[1], &p, &plen) || !get_i64(env, argv[2], &off) || !get_i64(env, argv[3], &len) ||
      !get_i64(env, argv[4], &port) || !get_i64(env, argv[5], &groups)) return NULL;
  if (!in_range(plen, off, len)) { napi_throw_range_error(env, NULL, "offset/length outside the buffer"); return NULL; }
  if (s->fd < 0) return num(env, -EBADF);
  return num(env, send_one(s->fd, p + off, (size_t)len, (uint32_t)port, (uint32_t)groups));
}

#define MAX_HELD 64
// The send loop of sendMany and sendManyHeld. Spans with skip[i] set are left out (their result
// is the caller's).
static size_t send_spans(sock_t *s, uint8_t *p, int32_t *sp, size_t count, int32_t *res, const uint8_t *skip) {
  struct mmsghdr mm[MAX_SEND_BATCH]; struct sockaddr_nl addr[MAX_SEND_BATCH]; struct iovec iov[MAX_SEND_BATCH];
  int32_t held[MAX_HELD]; int herr[MAX_HELD]; size_t nheld = 0; int overflow = 0;  // ports that failed in this call
  size_t sent = 0, i = 0;
// A port's errno from earlier in this call; once the list overflowed, every other unicast waits too.
#define HELD(port) held_or(held_err(held, herr, nheld, (port)), overflow)
  while (i < count) {
    int32_t *e = sp + i * 4;
    if (skip && skip[i]) { i++; continue; }  // res[i] set by the caller
    if (s->fd < 0) { res[i++] = -EBADF; continue; }
    if (e[3] != 0) {  // group send
      res[i] = send_one(s->fd, p + (uint32_t)e[0], (uint32_t)e[1], (uint32_t)e[2], (uint32_t)e[3]);
      sent += res[i] == 0;
      i++;
      continue;
    }
    int h = HELD(e[2]);
    if (h) { res[i++] = h; continue; }
    size_t k = 0;
    while (k < MAX_SEND_BATCH && i + k < count && sp[(i + k) * 4 + 3] == 0 && !(skip && skip[i + k]) &&
           !HELD(sp[(i + k) * 4 + 2])) {
      int32_t *f = sp + (i + k) * 4;
      set_dest(&mm[k].msg_hdr, &addr[k], &iov[k], p + (uint32_t)f[0], (uint32_t)f[1], (uint32_t)f[2], 0);
      k++;
    }
    int r;
    do r = sendmmsg(s->fd, mm, (unsigned)k, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
    if (r < 0) r = 0;
    for (int j = 0; j < r; j++) res[i + j] = 0;
    sent += (size_t)r;
    i += (size_t)r;
    if ((size_t)r < k) {  // unicast errors happen before delivery, so asking again is safe
      int32_t *f = sp + i * 4;
      res[i] = send_one(s->fd, p + (uint32_t)f[0], (uint32_t)f[1], (uint32_t)f[2], 0);
      if (res[i] == 0) sent++;
      else if (nheld < MAX_HELD) { held[nheld] = f[2]; herr[nheld++] = res[i]; }
      else overflow = 1;  // too many full ports to track: hold back every later unicast span
      i++;
    }
  }
#undef HELD
  return sent;
}

// sendMany(handle, bytes, spans Int32Array [offset,length,port,groups]*count, count, results Int32Array)
// -> number delivered; results[i] = 0 or -errno. Runs of unicast datagrams go out with sendmmsg.
// Group sends go one by one: on USERSOCK they fail (ECONNREFUSED) *after* delivering, and sendmmsg
// would hide which one failed, so retrying it there would deliver twice.
// Order per port: once a unicast send to a port fails, the later spans to that port are not tried
// (they get the same errno), so that a reader draining its socket meanwhile never gets a later
// datagram before an earlier one; the caller queues them in order behind the failed one.
static napi_value js_send_many(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t *p; size_t plen, nspan, nres; int32_t *sp, *res; int64_t count;
  if (!get_args(env, info, 5, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 0);
  if (!s || !get_bytes(env, argv[1], &p, &plen) || !get_i32s(env, argv[2], &sp, &nspan) ||
      !get_i64(env, argv[3], &count) || !get_i32s(env, argv[4], &res, &nres)) return NULL;
  if (count < 0 || (size_t)count * 4 > nspan || (size_t)count > nres) {
    napi_throw_range_error(env, NULL, "count exceeds spans or results");
    return NULL;
  }
  for (int64_t i = 0; i < count; i++) {
    if (!in_range(plen, (uint32_t)sp[i * 4], (uint32_t)sp[i * 4 + 1])) {
      napi_throw_range_error(env, NULL, "span outside the buffer");
      return NULL;
    }
  }
  return num(env, (double)send_spans(s, p, sp, (size_t)count, res, NULL));
}

// setInt(handle, level, name, value) -> 0 or -errno.
static napi_value js_set_int(napi_env env, napi_callback_info info) {
  napi_value argv[4]; int64_t level, name, value;
  if (!get_args(env, info, 4, argv) || !get_i64(env, argv[1], &level) || !get_i64(env, argv[2], &name) ||
      !get_i64(env, argv[3], &value)) return NULL;
  sock_t *s = get_sock(env, argv[0], 1);
  if (!s) return NULL;
  int v = (int)value;
  return num(env, setsockopt(s->fd, (int)level, (int)name, &v, sizeof v) < 0 ? -errno : 0);
}

// getInt(handle, level, name) -> value, or throws.
static napi_value js_get_int(napi_env env, napi_callback_info info) {
  napi_value argv[3]; int64_t level, name;
  if (!get_args(env, info, 3, argv) || !get_i64(env, argv[1], &level) || !get_i64(env, argv[2], &name)) return NULL;
  sock_t *s = get_sock(env, argv[0], 1);
  if (!s) return NULL;
  int v = 0; socklen_t len = sizeof v;
  if (getsockopt(s->fd, (int)level, (int)name, &v, &len) < 0) return throw_errno(env, errno, "getsockopt");
  return num(env, v);
}


// dumpSync(protocol, request) -> Buffer of every reply datagram up to and including NLMSG_DONE
// (or the first NLMSG_ERROR), or throws. A blocking request/dump round trip on a socket of
// `protocol` (e.g. NETLINK_SOCK_DIAG) kept open per process and per protocol: the caller needs
// the answer before it goes on (sock_diag: which socket holds a port *now*). Bounded: gives up
// after 1 s without an answer (ETIMEDOUT) and past 64 MiB of replies (EMSGSIZE).
#define DUMP_FDS 32
static int dump_fds[DUMP_FDS];
static int dump_fd(int proto) {
  if (proto < 0 || proto >= DUMP_FDS) return -EINVAL;
  if (dump_fds[proto] > 0) return dump_fds[proto];
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) return -errno;
  struct timeval tv = { 1, 0 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return dump_fds[proto] = fd;
}

static void free_bytes(napi_env env, void *data, void *hint) { (void)env; (void)hint; free(data); }

// One request/dump round trip (see dumpSync): *out is malloc'd, the caller frees it. 0 or -errno.
static int dump_round_trip(int proto, const uint8_t *req, size_t reqlen, uint8_t **out, size_t *outlen) {
  if (reqlen < NLMSG_HDRLEN) return -EINVAL;
  int fd = dump_fd(proto);
  if (fd < 0) return fd;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  // A reply left over from a request that timed out would be taken for this one: drain first.
  uint8_t scratch[64];
  while (recv(fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC) >= 0) {}
  uint32_t seq = ((const struct nlmsghdr *)req)->nlmsg_seq;
  if (sendto(fd, req, reqlen, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
  size_t cap = 65536, len = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return -ENOMEM;
  for (int done = 0; !done;) {
    if (cap - len < 32768) {
      if (cap >= ((size_t)64 << 20)) { free(buf); return -EMSGSIZE; }
      uint8_t *nb = realloc(buf, cap *= 2);
      if (!nb) { free(buf); return -ENOMEM; }
      buf = nb;
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n < 0) {
      int e = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
      if (e == EINTR) continue;
      free(buf); return -e;
    }
    // Walk what came (NLMSG_NEXT counts `left` down); stop at DONE or ERROR of our sequence number.
    ssize_t left = n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)(buf + len); NLMSG_OK(h, (size_t)left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) done = 1;
    }
    len += (size_t)n;
  }
  *out = buf; *outlen = len;
  return 0;
}

static napi_value js_dump_sync(napi_env env, napi_callback_info info) {
  napi_value argv[2], out; int64_t proto; uint8_t *req, *buf; size_t reqlen, len;
  if (!get_args(env, info, 2, argv) || !get_i64(env, argv[0], &proto) || !get_bytes(env, argv[1], &req, &reqlen)) return NULL;
  int r = dump_round_trip((int)proto, req, reqlen, &buf, &len);
  if (r < 0) return throw_errno(env, -r, r == -EINVAL ? "dumpSync" : "recv");
  CHECK(napi_create_external_buffer(env, len, buf, free_bytes, NULL, &out));
  return out;
}

// sendManyHeld(handle, bytes, spans, count, results, inodes Int32Array, protocol[, after Int32Array])
// -> number delivered.
// sendMany, but first (in the same call, with no JavaScript in between) the kernel's sock_diag
// table of `protocol`'s netlink sockets is read, and a unicast span whose inodes[i] is not 0 goes
// out only if the socket bound to its port now has that inode; otherwise results[i] = -ESTALE (a
// port nobody holds too). If the table cannot be read, every checked span gets -ESTALE. This
// narrows "checked, then sent" to the microseconds between the dump's last recv and sendmmsg, which
// userspace cannot close: a send names a port, not a socket.
// With `after`, the table is read again once the spans are sent, and after[i] says which socket
// holds span i's port then: for a checked span that was delivered, the inode on its port (0: none,
// or no table), asked once more when the port is missing from that dump (the kernel can leave a
// socket out of one dump); for every other span, inodes[i] as given. A netlink socket keeps its
// port from bind to close and its inode is not reused while it exists, so after[i] == inodes[i]
// proves the datagram reached that socket; anything else means the port changed hands during the
// send and the datagram may have reached the next socket (the caller reports it).
#define SOCK_DIAG_BY_FAMILY 20
#define NETLINK_SOCK_DIAG_PROTO 4
static uint32_t diag_seq;

// One sock_diag dump of `proto`'s netlink sockets (no attributes): 0 or -errno; *buf is the caller's to free.
static int diag_dump(int proto, uint8_t **buf, size_t *len) {
  // struct nlmsghdr + struct netlink_diag_req: AF_NETLINK, protocol, show nothing extra, any cookie.
  uint8_t req[16 + 20] = { 0 };
  struct nlmsghdr *h = (struct nlmsghdr *)req;
  h->nlmsg_len = sizeof req; h->nlmsg_type = SOCK_DIAG_BY_FAMILY; h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h->nlmsg_seq = ++diag_seq ? diag_seq : ++diag_seq;
  req[16] = AF_NETLINK; req[17] = (uint8_t)proto;
  memset(req + 28, 0xff, 8);  // ndiag_cookie: INET_DIAG_NOCOOKIE (ndiag_show 0: no attributes)
  *buf = NULL; *len = 0;
  return dump_round_trip(NETLINK_SOCK_DIAG_PROTO, req, sizeof req, buf, len);
}

// The inode of the socket bound to `port` in a diag_dump answer; 0 when none is listed.
static uint32_t port_inode(const uint8_t *buf, size_t len, int proto, uint32_t port) {
  // struct netlink_diag_msg: family, type, protocol, state, u32 portid, u32 dst_portid,
  // u32 dst_group, u32 inode, u32 cookie[2]; port at +4, inode at +16.
  ssize_t left = (ssize_t)len;
  for (const struct nlmsghdr *m = (const struct nlmsghdr *)buf; NLMSG_OK(m, (size_t)left); m = NLMSG_NEXT(m, left)) {
    if (m->nlmsg_type != SOCK_DIAG_BY_FAMILY || m->nlmsg_len < NLMSG_HDRLEN + 28) continue;
    const uint8_t *d = NLMSG_DATA(m);
    uint32_t mport, minode;
    memcpy(&mport, d + 4, 4); memcpy(&minode, d + 16, 4);
    if (d[0] == AF_NETLINK && d[2] == (uint8_t)proto && mport == port) return minode;
  }
  return 0;
}

// The re-check after the send (see sendManyHeld): fills after[]; a port missing from the first
// dump is looked up in a second one.
static void held_after(int proto, const int32_t *sp, size_t count, const int32_t *res, const int32_t *ino, int32_t *after) {
  size_t todo = 0;
  for (size_t i = 0; i < count; i++) {
    after[i] = ino[i];
    if (ino[i] != 0 && sp[i * 4 + 3] == 0 && res[i] == 0) todo++;
  }
  for (int pass = 0; pass < 2 && todo; pass++) {
    uint8_t *buf; size_t len;
    int r = diag_dump(proto, &buf, &len);
    todo = 0;
    for (size_t i = 0; i < count; i++) {
      if (ino[i] == 0 || sp[i * 4 + 3] != 0 || res[i] != 0) continue;
      if (pass == 1 && after[i] != 0) continue;  // listed in the first dump: settled
      after[i] = r == 0 ? (int32_t)port_inode(buf, len, proto, (uint32_t)sp[i * 4 + 2]) : 0;
      if (after[i] == 0) todo++;
    }
    free(buf);
  }
}

static napi_value js_send_many_held(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  uint8_t *p; size_t plen, nspan, nres, nino, naft = 0; int32_t *sp, *res, *ino, *after = NULL; int64_t count, proto;
  size_t argc = 8;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 7) { napi_throw_type_error(env, NULL, "too few arguments"); return NULL; }
  sock_t *s = get_sock(env, argv[0], 0);
  if (!s || !get_bytes(env, argv[1], &p, &plen) || !get_i32s(env, argv[2], &sp, &nspan) ||
      !get_i64(env, argv[3], &count) || !get_i32s(env, argv[4], &res, &nres) || !get_i32s(env, argv[5], &ino, &nino) ||
      !get_i64(env, argv[6], &proto)) return NULL;
  if (argc >= 8) {
    napi_valuetype t;
    if (napi_typeof(env, argv[7], &t) != napi_ok) return NULL;
    if (t != napi_undefined && !get_i32s(env, argv[7], &after, &naft)) return NULL;
  }
  if (count < 0 || (size_t)count * 4 > nspan || (size_t)count > nres || (size_t)count > nino ||
      (after && (size_t)count > naft)) {
    napi_throw_range_error(env, NULL, "count exceeds spans, results, inodes or after");
    return NULL;
  }
  for (int64_t i = 0; i < count; i++) {
    if (!in_range(plen, (uint32_t)sp[i * 4], (uint32_t)sp[i * 4 + 1])) {
      napi_throw_range_error(env, NULL, "span outside the buffer");
      return NULL;
    }
  }
  uint8_t *skip = calloc((size_t)count + 1, 1);
  if (!skip) return throw_errno(env, ENOMEM, "sendManyHeld");
  uint8_t *buf; size_t len;
  int r = diag_dump((int)proto, &buf, &len);
  for (int64_t i = 0; i < count; i++) {
    if (sp[i * 4 + 3] != 0 || ino[i] == 0) continue;  // group sends and unchecked spans
    if (r != 0 || port_inode(buf, len, (int)proto, (uint32_t)sp[i * 4 + 2]) != (uint32_t)ino[i]) {
      skip[i] = 1; res[i] = -ESTALE;
    }
  }
  free(buf);
  size_t sent = send_spans(s, p, sp, (size_t)count, res, skip);
  free(skip);
  if (after) held_after((int)proto, sp, (size_t)count, res, ino, after);
  return num(env, (double)sent);
}

// busyPoll(handle, usec) -> 0, or -EINVAL outside 0..MAX_BUSY_US: after each batch, keep reading
// for up to usec microseconds before going back to sleep (0: never; see on_readable).
static napi_value js_busy_poll(napi_env env, napi_callback_info info) {
  napi_value argv[2]; int64_t us;
  if (!get_args(env, info, 2, argv) || !get_i64(env, argv[1], &us)) return NULL;
  sock_t *s = get_sock(env, argv[0], 1);
  if (!s) return NULL;
  if (us < 0 || us > MAX_BUSY_US) return num(env, -EINVAL);
  s->busy_ns = us * 1000;
  return num(env, 0);
}

// busyPolled(handle) -> batches read while busy polling, since the socket was opened.
static napi_value js_busy_polled(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  sock_t *s = get_sock(env, argv[0], 0);
  return s ? num(env, s->busy_hits) : NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    { "open", js_open }, { "localPort", js_local_port }, { "startRecv", js_start }, { "stopRecv", js_stop },
    { "close", js_close }, { "ref", js_ref }, { "send", js_send }, { "sendMany", js_send_many },
    { "setInt", js_set_int }, { "getInt", js_get_int }, { "dumpSync", js_dump_sync },
    { "sendManyHeld", js_send_many_held }, { "busyPoll", js_busy_poll }, { "busyPolled", js_busy_polled },
  };
  static const struct { const char *name; int value; } consts[] = {
    { "SOL_SOCKET", SOL_SOCKET }, { "SOL_NETLINK", SOL_NETLINK },
    { "SO_RCVBUF", SO_RCVBUF }, { "SO_SNDBUF", SO_SNDBUF },
    { "SO_RCVBUFFORCE", SO_RCVBUFFORCE }, { "SO_SNDBUFFORCE", SO_SNDBUFFORCE }, { "SO_PASSCRED", SO_PASSCRED },
    { "NETLINK_ADD_MEMBERSHIP", NETLINK_ADD_MEMBERSHIP }, { "NETLINK_DROP_MEMBERSHIP", NETLINK_DROP_MEMBERSHIP },
    { "NETLINK_NO_ENOBUFS", NETLINK_NO_ENOBUFS }, { "NETLINK_CAP_ACK", NETLINK_CAP_ACK },
    { "NETLINK_EXT_ACK", NETLINK_EXT_ACK }, { "META_STRIDE", META_STRIDE },
    { "MAX_BUSY_US", MAX_BUSY_US },
  };
  napi_value v, c;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &v));
    CHECK(napi_set_named_property(env, exports, fns[i].name, v));
  }
  CHECK(napi_create_object(env, &c));
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    CHECK(napi_create_int32(env, consts[i].value, &v));
    CHECK(napi_set_named_property(env, c, consts[i].name, v));
  }
  CHECK(napi_set_named_property(env, exports, "constants", c));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
