import { toBinary, type DescEnum, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * The proto files behind a set of services, indexed the ways reflection clients ask:
 * by file name, by fully-qualified symbol, and by extended type. Built from the descriptors
 * protoc-gen-es embedded in src/gen, so it always matches what the server speaks.
 */
export class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, DescExtension[]>();
  private readonly encoded = new Map<DescFile, Uint8Array>();
  /** Fully-qualified names of the services, sorted. */
  readonly serviceNames: string[];

  constructor(services: Iterable<DescService>) {
    const names = new Set<string>();
    for (const s of services) {
      names.add(s.typeName);
      this.addFile(s.file);
    }
    this.serviceNames = [...names].sort();
  }

  /** The file with this name ("process.proto"), or undefined. */
  fileByName(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  /** The file defining a service, method, message, enum, enum value, field or extension. */
  fileBySymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }

  /** The file declaring extension `number` of message `extendee`. */
  fileByExtension(extendee: string, number: number): DescFile | undefined {
    return this.extensions.get(extendee)?.find((e) => e.number === number)?.file;
  }

  /** Extension numbers declared for `extendee`; undefined when the message is unknown. */
  extensionNumbers(extendee: string): number[] | undefined {
    if (!this.symbols.has(extendee)) return undefined;
    return (this.extensions.get(extendee) ?? []).map((e) => e.number).sort((a, b) => a - b);
  }

  /**
   * `file` and its transitive imports, the file first, as serialized FileDescriptorProtos,
   * leaving out files in `alreadySent` (which is updated), as the spec allows on one stream.
   */
  encodeWithDependencies(file: DescFile, alreadySent: Set<string>): Uint8Array[] {
    const out: Uint8Array[] = [];
    const visit = (f: DescFile, requested: boolean): void => {
      const name = f.proto.name;
      if (!requested && alreadySent.has(name)) return;
      alreadySent.add(name);
      out.push(this.encode(f));
      for (const dep of f.dependencies) visit(dep, false);
    };
    visit(file, true);
    return out;
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file);
    if (!bytes) this.encoded.set(file, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
    for (const e of file.enums) this.addEnum(e, file);
    for (const m of file.messages) this.addMessage(m, file);
    for (const x of file.extensions) this.addExtension(x, file);
    for (const dep of file.dependencies) this.addFile(dep);
  }

  private addMessage(m: DescMessage, file: DescFile): void {
    this.symbols.set(m.typeName, file);
    for (const f of m.fields) this.symbols.set(`${m.typeName}.${f.name}`, file);
    for (const o of m.oneofs) this.symbols.set(`${m.typeName}.${o.name}`, file);
    for (const e of m.nestedEnums) this.addEnum(e, file);
    for (const n of m.nestedMessages) this.addMessage(n, file);
    for (const x of m.nestedExtensions) this.addExtension(x, file);
  }

  private addEnum(e: DescEnum, file: DescFile): void {
    this.symbols.set(e.typeName, file);
    // Enum values are scoped to the enum's parent, as in protoc.
    const scope = e.typeName.slice(0, e.typeName.lastIndexOf(".") + 1);
    for (const v of e.values) this.symbols.set(`${scope}${v.name}`, file);
  }

  private addExtension(x: DescExtension, file: DescFile): void {
    this.symbols.set(x.typeName, file);
    const list = this.extensions.get(x.extendee.typeName) ?? [];
    list.push(x);
    this.extensions.set(x.extendee.typeName, list);
  }
}
