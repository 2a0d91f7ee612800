/**
 * any: google.protobuf.Any packing for events and payloads. containerd's
 * typeurl uses the bare full message name as type_url for protobuf messages
 * (e.g. "containerd.services.images.v1.ImageCreate"); unpacking also accepts
 * prefixed URLs ("type.googleapis.com/<name>").
 */
import { messageType } from './loader.js';

/** google.protobuf.Any as decoded by the loader. */
export interface ProtoAny {
  type_url: string;
  value: Buffer;
}

/** Encodes `message` as the named type and wraps it in an Any. */
export function packAny(fullName: string, message: object): ProtoAny {
  return { type_url: fullName, value: messageType(fullName).serialize(message) };
}

/** The full message name of an Any's type_url (text after the last '/'). */
export function anyTypeName(any: Pick<ProtoAny, 'type_url'>): string {
  const i = any.type_url.lastIndexOf('/');
  return i < 0 ? any.type_url : any.type_url.slice(i + 1);
}

/** Decodes an Any whose type is one of our loaded messages; throws if unknown. */
export function unpackAny<T extends object = any>(any: ProtoAny): { typeName: string; message: T } {
  const typeName = anyTypeName(any);
  return { typeName, message: messageType<T>(typeName).deserialize(Buffer.from(any.value ?? [])) };
}
