// Minimal typings for restructure 3 (it ships none): only what the codec benchmark's reference uses.
declare module "restructure" {
  export interface RType {
    fromBuffer(buffer: Uint8Array): any;
    toBuffer(value: any): Uint8Array;
    size(value?: any, parent?: any): number;
  }
  export const uint8: RType;
  export const uint16le: RType;
  export const uint32le: RType;
  export const int32le: RType;
  export class Struct implements RType {
    constructor(fields: Record<string, RType>);
    fromBuffer(buffer: Uint8Array): any;
    toBuffer(value: any): Uint8Array;
    size(value?: any, parent?: any): number;
  }
  export class VersionedStruct implements RType {
    constructor(type: string | RType, versions: Record<string | number, Record<string, RType>>);
    fromBuffer(buffer: Uint8Array): any;
    toBuffer(value: any): Uint8Array;
    size(value?: any, parent?: any): number;
  }
  class BufferT implements RType {
    constructor(length: number | string);
    fromBuffer(buffer: Uint8Array): any;
    toBuffer(value: any): Uint8Array;
    size(value?: any, parent?: any): number;
  }
  export { BufferT as Buffer };
  class ArrayT implements RType {
    constructor(type: RType, length: number | string);
    fromBuffer(buffer: Uint8Array): any;
    toBuffer(value: any): Uint8Array;
    size(value?: any, parent?: any): number;
  }
  export { ArrayT as Array };
  export class Reserved implements RType {
    constructor(type: RType, count?: number);
    fromBuffer(buffer: Uint8Array): any;
    toBuffer(value: any): Uint8Array;
    size(value?: any, parent?: any): number;
  }
}
