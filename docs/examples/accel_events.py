#!/usr/bin/python3
"""accel_events: print the accel daemon's RAS events, with pyroute2 (Debian python3-pyroute2).

What differs from a kernel genl family (see README.md here):
 - the daemon is a process on NETLINK_USERSOCK (family=2), at its own port id (ACCEL_NL_PORT,
   default 0x41434345), and pyroute2 hard-codes the kernel (port 0) as the destination in two
   places, so the socket class overrides both (sendto for discovery, _gate for requests);
 - joining a USERSOCK multicast group needs CAP_NET_ADMIN: without it, the accel "subscribe"
   op asks the daemon to unicast the group's events to this socket instead;
 - USERSOCK groups are shared by every program on the host: recv_ft keeps the daemon's datagrams.

Run: python3 accel_events.py [COUNT]   (exit after COUNT events; 0 or none: run until killed)
"""
import errno
import os
import sys

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

PEER = int(os.environ.get("ACCEL_NL_PORT") or "0x41434345", 0)
NETLINK_USERSOCK = 2
# From docs/netlink/specs/accel.yaml.
CMD_SUBSCRIBE, CMD_RAS_EVENT_NTF = 15, 30
KINDS = ["error", "storm-overflow", "row-retired", "rma"]
BLOCKS = ["hbm", "sram", "compute-core", "dma", "mmu", "firmware", "pcie", "interconnect",
          "thermal", "power", "soc-fabric"]
SEVERITIES = ["correctable", "deferred", "uncorrectable-nonfatal", "uncorrectable-fatal"]


class accelmsg(genlmsg):
    """The accel attribute set, the part this program uses (explicit ids)."""
    nla_map = ((1, "DEV_INDEX", "uint32"),
               (33, "EVENT", "event"),
               (42, "GROUP", "asciiz"))

    class event(nla):
        nla_map = ((2, "SEQ", "uint64"),
                   (4, "KIND", "uint32"),
                   (5, "BLOCK", "uint32"),
                   (6, "SEVERITY", "uint32"),
                   (8, "ERROR_NAME", "asciiz"),
                   (10, "ADDRESS", "uint64"))


class UserGenlSocket(GenericNetlinkSocket):
    """A generic netlink socket that talks to a userspace server on NETLINK_USERSOCK."""

    def sendto(self, data, addr=None):   # discovery() (nlctrl) sends to the kernel
        return super().sendto(data, (PEER, 0))

    def _gate(self, msg, addr):          # put() / nlm_request() send to the kernel
        return super()._gate(msg, (PEER, 0))

    def recv_ft(self, bufsize):          # only the daemon's datagrams, not others' on shared groups
        while True:
            data, (port, _groups) = self._sock.recvfrom(bufsize)
            if port == PEER:
                return data


def name(table, i):
    return table[i] if i is not None and i < len(table) else "?"


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    s = UserGenlSocket(family=NETLINK_USERSOCK)
    try:
        s.bind("accel", accelmsg)
    except NetlinkError as e:
        sys.exit(f"cannot resolve accel at port {PEER:#x}: {e} (is \"accel daemon\" running?)")
    mode = "multicast"
    try:
        s.add_membership("ras")
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
        msg = accelmsg()
        msg["cmd"] = CMD_SUBSCRIBE
        msg["version"] = 1
        msg["attrs"] = [("GROUP", "ras")]
        s.nlm_request(msg, msg_type=s.prid, msg_flags=NLM_F_REQUEST | NLM_F_ACK)
        mode = "unicast"
    print(f"subscribed: family accel id {s.prid}, group ras id {s.mcast_groups['ras']}, {mode}", flush=True)
    seen = 0
    while not count or seen < count:
        for m in s.get():
            if m["header"]["type"] != s.prid or m["cmd"] != CMD_RAS_EVENT_NTF:
                continue
            ev = m.get_attr("EVENT")
            if ev is None:
                continue
            print(f"event dev={m.get_attr('DEV_INDEX')} seq={ev.get_attr('SEQ')} "
                  f"kind={name(KINDS, ev.get_attr('KIND'))} block={name(BLOCKS, ev.get_attr('BLOCK'))} "
                  f"severity={name(SEVERITIES, ev.get_attr('SEVERITY'))} name={ev.get_attr('ERROR_NAME') or ''} "
                  f"address={ev.get_attr('ADDRESS') or 0:#x}", flush=True)
            seen += 1
    s.close()


if __name__ == "__main__":
    main()
