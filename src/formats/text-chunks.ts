/**
 * The encoder of the text formats (ndjson, csv, dead letters): each value becomes some text, gathered into a
 * string of ~256 KiB before one UTF-8 conversion, so a block costs a few Buffers, not one per message.
 */
import { NO_CHUNKS, type BlockEncoder } from './format.js';

const CHUNK_CHARS = 256 * 1024;

export class TextChunkEncoder<T> implements BlockEncoder<T> {
  private chunks: Buffer[] = [];
  private pending = '';
  private finished = false;

  /**
   * @param label names the format in errors
   * @param textOf the text of one value (throwing refuses the value; nothing is written)
   * @param closing text added at finish() (e.g. the header row of a block that got no value)
   */
  constructor(
    private readonly label: string,
    private readonly textOf: (value: T) => string,
    private readonly closing: () => string = () => '',
  ) {}

  write(value: T): number {
    if (this.finished) throw new Error(`${this.label} encoder: write() after finish()`);
    const text = this.textOf(value);
    this.pending += text;
    if (this.pending.length >= CHUNK_CHARS) this.flush();
    return Buffer.byteLength(text, 'utf8');
  }

  finish(): Buffer[] {
    if (!this.finished) {
      this.finished = true;
      this.pending += this.closing();
      this.flush();
    }
    return this.chunks;
  }

  /** The chunks completed so far (see BlockEncoder.takeChunks); cheap when there are none. */
  takeChunks(): Buffer[] {
    const { chunks } = this;
    if (chunks.length === 0 || this.finished) return NO_CHUNKS;
    this.chunks = [];
    return chunks;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Buffer.from(this.pending, 'utf8'));
    this.pending = '';
  }
}
