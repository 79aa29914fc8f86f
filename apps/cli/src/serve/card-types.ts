// The model card's shape, in a file without imports so the playground (a browser bundle) can share it.

/** What /vistune/card returns (plus `authRequired`). */
export interface ModelCard {
  id: string;
  family: string;
  backend: string;
  contextLength: number | null;
  parameters: { total: number; parts: Record<string, number> };
  llm: string;
  modalities: { name: string; kind: string; encoder: string; adapter: string; extensions: string[] }[];
  heads: string[];
  plugins: string[];
}
