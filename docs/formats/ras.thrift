// SPDX-License-Identifier: MIT
// accelnl RAS payloads, format THRIFT (capability bit 5), schema version 1.0, encoded with the
// compact protocol (TCompactProtocol). See docs/formats/thrift.md.
// Thrift has no unsigned integers: a u32 travels as the i32 with the same 32 bits and a u64 as the
// i64 with the same 64 bits; reinterpret them as unsigned. Enum numbers are the accel spec's.

namespace cpp accelnl.ras.v1
namespace py accelnl_ras_v1
namespace js accelnl_ras_v1
namespace go accelnl_ras_v1

enum Block {
  HBM = 0, SRAM = 1, COMPUTE_CORE = 2, DMA = 3, MMU = 4, FIRMWARE = 5, PCIE = 6, INTERCONNECT = 7,
  THERMAL = 8, POWER = 9, SOC_FABRIC = 10
}

enum Severity { CORRECTABLE = 0, DEFERRED = 1, UNCORRECTABLE_NONFATAL = 2, UNCORRECTABLE_FATAL = 3 }

enum EventKind { ERROR = 0, STORM_OVERFLOW = 1, ROW_RETIRED = 2, RMA = 3 }

enum ActionHint { NONE = 0, RESTART_APP = 1, RESET_DEVICE = 2, REBOOT = 3, REPLACE = 4 }

/** One RAS log record. */
struct Event {
  1: required i32 dev,
  2: required i64 seq,
  3: required i64 ts_ns,
  4: required EventKind kind,
  5: required Block block,
  6: required Severity severity,
  7: required i32 error_id,
  8: required string error_name,
  9: required i32 count,
  10: required i64 address,
  11: required binary syndrome,
  12: required ActionHint action,
  13: required i32 folded,
  14: required i64 first_ts_ns,
  15: required i64 last_ts_ns,
}

struct Counter {
  1: required Block block,
  2: required Severity severity,
  3: required i64 volatile_count,
  4: required i64 aggregate_count,
}

/** A device's RAS counter snapshot. */
struct Counters {
  1: required i32 dev,
  2: required i64 ts_ns,
  3: required i64 cursor,
  4: required list<Counter> counters,
  5: required i32 rows_active,
  6: required i32 rows_pending,
  7: required i32 rma_threshold,
  8: required bool rma,
}

/** What a payload attribute holds: exactly one field is set. */
union Payload {
  1: Counters counters,
  2: list<Event> events,
}
