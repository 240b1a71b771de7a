/** A block compression: applied to the whole encoded body at seal time, undone when a block is read. */
export interface Compression {
  /** Stable name written into manifests: `none`, `gzip`, `snappy`. */
  readonly name: string;
  /** Extension appended to the format's, without the dot (`gz`, `sz`); empty for none. */
  readonly extension: string;
  /** Compresses the body chunks (in order) into the stored bytes. */
  compress(chunks: Buffer[]): Promise<Buffer>;
  /** Undoes compress(); rejects on malformed or truncated input. */
  decompress(stored: Buffer): Promise<Buffer>;
}
