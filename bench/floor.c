/*
 * The userspace floor for a sequential netlink request: a minimal echo server and client on
 * NETLINK_USERSOCK, one process each. The client sends a 40-byte message with sendto() and waits
 * for the echo with recv(); the server receives and sends it straight back. Every round trip wakes
 * both processes once, which is what any userspace server pays and the kernel's own families do not.
 * bench/rate.ts builds this file with cc and reports its rate next to ours and the kernel's.
 *
 *   floor server PORT            echo until killed
 *   floor client PORT MS         echo for MS milliseconds (after MS/4 of warm-up), print "rate N"
 */
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_LEN 40

static int open_sock(unsigned port) {
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);
	if (fd < 0) { perror("socket(NETLINK_USERSOCK)"); exit(1); }
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_pid = port };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) { perror("bind"); exit(1); }
	return fd;
}

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int serve(unsigned port) {
	int fd = open_sock(port);
	unsigned char buf[256];
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) { if (errno == EINTR) continue; perror("recvfrom"); return 1; }
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) < 0 && errno != EAGAIN) { perror("sendto"); return 1; }
	}
}

/* One round trip: send the request to the server, wait for its echo. */
static void round_trip(int fd, const struct sockaddr_nl *to, unsigned char *msg, unsigned seq) {
	struct nlmsghdr *h = (struct nlmsghdr *)msg;
	h->nlmsg_seq = seq;
	if (sendto(fd, msg, MSG_LEN, 0, (const struct sockaddr *)to, sizeof(*to)) != MSG_LEN) { perror("sendto"); exit(1); }
	unsigned char buf[256];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR) continue;
		if (n != MSG_LEN) { fprintf(stderr, "recv: %zd bytes\n", n); exit(1); }
		if (((struct nlmsghdr *)buf)->nlmsg_seq == seq) return;
	}
}

static int client(unsigned port, double ms) {
	int fd = open_sock(0);
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = port };
	unsigned char msg[MSG_LEN];
	memset(msg, 0, sizeof(msg));
	struct nlmsghdr *h = (struct nlmsghdr *)msg;
	h->nlmsg_len = MSG_LEN;
	h->nlmsg_type = 0x10;
	h->nlmsg_flags = NLM_F_REQUEST;
	unsigned seq = 0;
	double t = now_ms(), end = t + ms / 4;
	while (now_ms() < end) round_trip(fd, &to, msg, ++seq);
	unsigned long done = 0;
	double t0 = now_ms();
	end = t0 + ms;
	for (;;) {
		for (int i = 0; i < 64; i++) round_trip(fd, &to, msg, ++seq);
		done += 64;
		t = now_ms();
		if (t >= end) break;
	}
	printf("rate %.0f\n", done / ((t - t0) / 1e3));
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 3 && strcmp(argv[1], "server") == 0) return serve((unsigned)strtoul(argv[2], NULL, 0));
	if (argc >= 4 && strcmp(argv[1], "client") == 0) return client((unsigned)strtoul(argv[2], NULL, 0), atof(argv[3]));
	fprintf(stderr, "usage: floor server PORT | floor client PORT MS\n");
	return 2;
}
