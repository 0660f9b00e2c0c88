// Capture files of netlink traffic for Wireshark/tshark: classic pcap, LINKTYPE_NETLINK (253),
// each record a Linux "cooked" netlink header (big-endian: pkttype, hatype 824 = ARPHRD_NETLINK,
// halen 0, 8 address bytes, protocol) followed by the datagram's netlink messages, host order.
//
// The protocol field says NETLINK_GENERIC (16) although the traffic runs on NETLINK_USERSOCK (2):
// tshark picks its dissector by this field, and decodes our genl messages (nlctrl fully, the
// accel family's headers) only when it reads 16. See docs/accel.8.md, "Capture".
import * as fs from 'fs';
import { NETLINK_GENERIC, NETLINK_USERSOCK } from '../genl/consts';
import { type Batch, type NlSocket, openSocket } from '../genl/socket';
import { nowNs } from './output';

export const LINKTYPE_NETLINK = 253;
/** The classic pcap magic for nanosecond-resolution timestamps (libpcap's NSEC_TCPDUMP_MAGIC). */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const ARPHRD_NETLINK = 824;
/** Linux packet types for the cooked header: to us, multicast to us, from us. */
const PACKET_HOST = 0, PACKET_MULTICAST = 2, PACKET_OUTGOING = 4;

export interface Pcap {
  record(data: Uint8Array, pkttype: number): void;
  close(): void;
}

export function openPcap(file: string, protocol = NETLINK_GENERIC): Pcap {
  const fd = fs.openSync(file, 'w');
  const g = Buffer.alloc(24);
  g.writeUInt32LE(PCAP_MAGIC_NS, 0); // nanosecond timestamps
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeInt32LE(0, 8);
  g.writeUInt32LE(0, 12);
  g.writeUInt32LE(262144, 16);
  g.writeUInt32LE(LINKTYPE_NETLINK, 20);
  fs.writeSync(fd, g);
  let open = true;
  return {
    record(data, pkttype) {
      if (!open) return;
      const now = nowNs();
      const h = Buffer.alloc(32);
      h.writeUInt32LE(Number(now / 1000000000n), 0);
      h.writeUInt32LE(Number(now % 1000000000n), 4);
      h.writeUInt32LE(16 + data.length, 8);
      h.writeUInt32LE(16 + data.length, 12);
      h.writeUInt16BE(pkttype, 16);
      h.writeUInt16BE(ARPHRD_NETLINK, 18);
      h.writeUInt16BE(0, 20);
      h.writeUInt16BE(protocol, 30);
      // One write per record, synchronous: a capture cut short by Ctrl-C still parses.
      fs.writeSync(fd, Buffer.concat([h, data]));
    },
    close() { if (open) { open = false; fs.closeSync(fd); } },
  };
}

/**
 * A client `open` that records every datagram the socket sends, and every one it receives from
 * `server` (USERSOCK groups are shared by every program on the host; others' traffic is not ours).
 */
export function capturingOpen(pcap: Pcap, server: number) {
  return (onBatch: (b: Batch) => void, hooks: { onOverrun?: () => void; rcvbuf?: number }): NlSocket => {
    const s = openSocket({
      protocol: NETLINK_USERSOCK, rcvbuf: hooks.rcvbuf, onOverrun: hooks.onOverrun,
      onError: (e) => process.stderr.write(`accel: netlink socket: ${e.message}\n`),
      onBatch: (b) => {
        for (let i = 0; i < b.count; i++) if (b.port(i) === server) pcap.record(b.data(i), b.groups(i) ? PACKET_MULTICAST : PACKET_HOST);
        onBatch(b);
      },
    });
    return {
      ...s,
      port: s.port,
      send(data, port, groups) { pcap.record(data, PACKET_OUTGOING); return s.send(data, port, groups); },
      sendMany(data, spans, count = spans.length >> 2, results) {
        for (let i = 0; i < count; i++) pcap.record(data.subarray(spans[4 * i], spans[4 * i] + spans[4 * i + 1]), PACKET_OUTGOING);
        return s.sendMany(data, spans, count, results);
      },
    };
  };
}
