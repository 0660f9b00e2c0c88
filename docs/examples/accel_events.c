// accel_events: print the accel daemon's RAS events, with libnl-genl.
//
// What differs from a kernel genl family (see README.md here):
//  - the daemon is a process on NETLINK_USERSOCK, so nl_connect(sk, NETLINK_USERSOCK) instead of
//    genl_connect(), and nl_socket_set_peer_port() to address it (ACCEL_NL_PORT, default "ACCE");
//  - joining a USERSOCK multicast group needs CAP_NET_ADMIN: without it, the accel "subscribe"
//    op asks the daemon to unicast the group's events to this socket instead;
//  - USERSOCK groups are shared by every program on the host: keep only the daemon's messages.
//
// Build: gcc -O2 -Wall -o accel_events accel_events.c $(pkg-config --cflags --libs libnl-genl-3.0)
// Run:   ./accel_events [COUNT]      (exit after COUNT events; 0 or none: run until killed)
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

// From docs/netlink/specs/accel.yaml (attribute ids and enum orders).
enum { A_DEV_INDEX = 1, A_EVENT = 33, A_GROUP = 42, A_MAX = 67 };
enum { E_SEQ = 2, E_KIND = 4, E_BLOCK = 5, E_SEVERITY = 6, E_ERROR_NAME = 8, E_ADDRESS = 10, E_MAX = 15 };
enum { CMD_SUBSCRIBE = 15, CMD_RAS_EVENT_NTF = 30 };
static const char *const kinds[] = { "error", "storm-overflow", "row-retired", "rma" };
static const char *const blocks[] = { "hbm", "sram", "compute-core", "dma", "mmu", "firmware", "pcie",
                                      "interconnect", "thermal", "power", "soc-fabric" };
static const char *const severities[] = { "correctable", "deferred", "uncorrectable-nonfatal", "uncorrectable-fatal" };
#define NAME(t, i) ((i) < sizeof(t) / sizeof(t[0]) ? t[i] : "?")

struct state { uint32_t peer; int family; int seen; };

static int on_event(struct nl_msg *msg, void *arg) {
	struct state *st = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct nlattr *tb[A_MAX + 1], *ev[E_MAX + 1];

	if (nlmsg_get_src(msg)->nl_pid != st->peer || nlh->nlmsg_type != st->family || gh->cmd != CMD_RAS_EVENT_NTF)
		return NL_SKIP; // another program's traffic on a shared group, or not an event
	if (genlmsg_parse(nlh, 0, tb, A_MAX, NULL) < 0 || !tb[A_DEV_INDEX] || !tb[A_EVENT])
		return NL_SKIP;
	if (nla_parse_nested(ev, E_MAX, tb[A_EVENT], NULL) < 0 || !ev[E_SEQ])
		return NL_SKIP;
	printf("event dev=%u seq=%" PRIu64 " kind=%s block=%s severity=%s name=%s address=0x%" PRIx64 "\n",
	       nla_get_u32(tb[A_DEV_INDEX]), nla_get_u64(ev[E_SEQ]),
	       ev[E_KIND] ? NAME(kinds, nla_get_u32(ev[E_KIND])) : "?",
	       ev[E_BLOCK] ? NAME(blocks, nla_get_u32(ev[E_BLOCK])) : "?",
	       ev[E_SEVERITY] ? NAME(severities, nla_get_u32(ev[E_SEVERITY])) : "?",
	       ev[E_ERROR_NAME] ? nla_get_string(ev[E_ERROR_NAME]) : "",
	       ev[E_ADDRESS] ? nla_get_u64(ev[E_ADDRESS]) : 0);
	fflush(stdout);
	st->seen++;
	return NL_OK;
}

/** The subscribe op: a do with the group's name, answered by an ACK. */
static int subscribe(struct nl_sock *sk, int family, const char *group) {
	struct nl_msg *msg = nlmsg_alloc();
	int err;
	if (!msg)
		return -NLE_NOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, CMD_SUBSCRIBE, 1) ||
	    nla_put_string(msg, A_GROUP, group) < 0) {
		nlmsg_free(msg);
		return -NLE_MSGSIZE;
	}
	err = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	return err < 0 ? err : nl_wait_for_ack(sk);
}

int main(int argc, char **argv) {
	struct state st = { .peer = 0x41434345 };
	const char *port = getenv("ACCEL_NL_PORT");
	int count = argc > 1 ? atoi(argv[1]) : 0, group, err;
	const char *mode = "multicast";
	struct nl_sock *sk;

	if (port && *port)
		st.peer = (uint32_t)strtoul(port, NULL, 0);
	sk = nl_socket_alloc();
	if (!sk || (err = nl_connect(sk, NETLINK_USERSOCK)) < 0) {
		fprintf(stderr, "nl_connect: %s\n", sk ? nl_geterror(err) : "out of memory");
		return 1;
	}
	nl_socket_set_peer_port(sk, st.peer);
	st.family = genl_ctrl_resolve(sk, "accel");
	group = genl_ctrl_resolve_grp(sk, "accel", "ras");
	if (st.family < 0 || group < 0) {
		fprintf(stderr, "cannot resolve accel/ras at port 0x%x: %s (is \"accel daemon\" running?)\n", st.peer,
			nl_geterror(st.family < 0 ? st.family : group));
		return 1;
	}
	if ((err = nl_socket_add_membership(sk, group)) < 0) {
		if (err != -NLE_PERM) {
			fprintf(stderr, "add membership: %s\n", nl_geterror(err));
			return 1;
		}
		if ((err = subscribe(sk, st.family, "ras")) < 0) {
			fprintf(stderr, "subscribe: %s\n", nl_geterror(err));
			return 1;
		}
		mode = "unicast";
	}
	// Events carry sequence number 0: the strict request/reply check would reject them.
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, &st);
	printf("subscribed: family accel id %d, group ras id %d, %s\n", st.family, group, mode);
	fflush(stdout);
	while (!count || st.seen < count) {
		if ((err = nl_recvmsgs_default(sk)) < 0 && err != -NLE_AGAIN) {
			fprintf(stderr, "receive: %s\n", nl_geterror(err));
			break;
		}
	}
	nl_socket_free(sk);
	return 0;
}
