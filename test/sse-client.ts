import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';

/** A small SSE client over node:http, for the event stream tests. */

export interface Frame {
  id: number | null;
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export class SseClient {
  readonly frames: Frame[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  body = '';
  closed = false;
  private buffer = '';
  private req: ClientRequest | null = null;
  res: IncomingMessage | null = null;

  static open(url: string, headers: Record<string, string> = {}, options: { read?: boolean } = {}): Promise<SseClient> {
    const client = new SseClient();
    return new Promise((resolve, reject) => {
      client.req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        client.res = res;
        client.status = res.statusCode ?? 0;
        client.headers = res.headers;
        res.setEncoding('utf8');
        res.on('close', () => (client.closed = true));
        res.on('error', () => {});
        if (client.status !== 200) {
          res.on('data', (chunk: string) => (client.body += chunk));
          res.on('end', () => resolve(client));
          return;
        }
        if (options.read === false) {
          res.pause();
          resolve(client);
          return;
        }
        client.startReading(() => resolve(client));
      });
      client.req.on('error', (error) => (client.closed ? undefined : reject(error)));
      client.req.on('close', () => (client.closed = true));
      client.req.end();
    });
  }

  /** Reads the stream (a client opened with `read: false` starts late, as a slow consumer). */
  startReading(onFirst: () => void = () => {}): void {
    let first = true;
    this.res!.on('data', (chunk: string) => {
      this.feed(chunk);
      if (first) {
        first = false;
        onFirst();
      }
    });
    this.res!.resume();
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let id: number | null = null;
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('id: ')) id = Number(line.slice(4));
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) this.frames.push({ id, event, data: JSON.parse(data.join('\n')) });
    }
  }

  framesOf(taskId: string): Frame[] {
    return this.frames.filter((f) => f.data.task_id === taskId);
  }

  lastId(): number {
    return this.frames.at(-1)?.id ?? 0;
  }

  close(): void {
    this.req?.destroy();
  }
}
