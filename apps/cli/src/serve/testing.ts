// Test helpers for vistune serve: the fixture model served on 127.0.0.1 with small limits.
import { loadModel, type VisionLanguageModel } from '../api/model.js';
import { createServer, type ServeOptions, type VistuneServer } from './server.js';

export const fixtureDir = new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
/** The playground as `vistune build` leaves it. */
export const playgroundDir = new URL('../../dist/playground/', import.meta.url).pathname;

export interface FixtureServer {
  vlm: VisionLanguageModel;
  server: VistuneServer;
  url: string;
  close(): Promise<void>;
}

/** Loads the fixture model and serves it on an ephemeral loopback port; `extra` overrides the options. */
export async function startFixtureServer(extra: Partial<ServeOptions> = {}): Promise<FixtureServer> {
  const vlm = extra.vlm ?? (await loadModel(fixtureDir, { discover: false }));
  const server = await createServer({
    vlm,
    id: 'tiny-llava-hf',
    defaults: { maxNewTokens: 16, temperature: 0, eos: true },
    media: { maxItemBytes: 1 << 20, maxItems: 4, allowDirs: [] },
    bodyLimit: 4 << 20,
    maxBatch: 8,
    maxQueue: 64,
    ...extra,
  });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  return {
    vlm,
    server,
    url,
    async close() {
      await server.close(0);
      if (!extra.vlm) vlm.dispose();
    },
  };
}
