// The part of buffer-layout (no bundled types) the KEY_VAL_32 codec uses.
declare module 'buffer-layout' {
  export class Layout<T = unknown> {
    span: number;
    property?: string;
    decode(b: Uint8Array, offset?: number): T;
    encode(src: T, b: Uint8Array, offset?: number): number;
    getSpan(b?: Uint8Array, offset?: number): number;
  }
  export class GreedyCount extends Layout<number> {}
  export function u32(property?: string): Layout<number>;
  export function struct<T>(fields: Layout[], property?: string): Layout<T>;
  export function seq<T>(element: Layout<T>, count: number | Layout<number>, property?: string): Layout<T[]>;
  export function greedy(elementSpan: number, property?: string): GreedyCount;
}
