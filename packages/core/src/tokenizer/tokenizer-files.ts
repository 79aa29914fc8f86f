// The JSON shapes of a Hugging Face tokenizer folder, and reading / writing them.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One entry of `tokenizer.json#added_tokens` (and, without `id`, of `tokenizer_config.json#added_tokens_decoder`). */
export interface AddedTokenJSON {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** `tokenizer.json`: only the fields vistune reads are typed; the rest is kept and written back as is. */
export interface TokenizerJSON {
  added_tokens?: AddedTokenJSON[];
  model: { type: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** A special token in `tokenizer_config.json` / `special_tokens_map.json`: a string or an AddedToken object. */
export type SpecialTokenValue = string | { content: string; [key: string]: unknown } | null;

/** A named chat template, as `tokenizer_config.json#chat_template` may hold a list of them. */
export interface NamedChatTemplate {
  name: string;
  template: string;
}

/** `tokenizer_config.json`: typed fields are the ones vistune reads; unknown keys are kept. */
export interface TokenizerConfigJSON {
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  bos_token?: SpecialTokenValue;
  eos_token?: SpecialTokenValue;
  unk_token?: SpecialTokenValue;
  pad_token?: SpecialTokenValue;
  additional_special_tokens?: SpecialTokenValue[];
  added_tokens_decoder?: Record<string, Omit<AddedTokenJSON, 'id'>>;
  chat_template?: string | NamedChatTemplate[];
  clean_up_tokenization_spaces?: boolean;
  [key: string]: unknown;
}

export type SpecialTokensMapJSON = Pick<
  TokenizerConfigJSON,
  'bos_token' | 'eos_token' | 'unk_token' | 'pad_token' | 'additional_special_tokens'
> & { [key: string]: unknown };

/** Where a chat template that is not in tokenizer_config.json came from. */
export interface ChatTemplateFile {
  fileName: 'chat_template.jinja' | 'chat_template.json';
  template: string;
}

export interface TokenizerFiles {
  tokenizerJson: TokenizerJSON;
  tokenizerConfig: TokenizerConfigJSON;
  specialTokensMap: SpecialTokensMapJSON | null;
  chatTemplateFile: ChatTemplateFile | null;
  /** Every path looked at for a chat template, for error messages. */
  chatTemplatePaths: string[];
}

async function readTextIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function parseJsonFile<T>(path: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(
      `${path} is not valid JSON (${(error as Error).message}); re-export the tokenizer folder.`,
    );
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkObject(value: unknown, path: string): void {
  if (!isObject(value)) {
    const held = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new Error(`${path} holds ${held}, expected a JSON object; re-export the tokenizer folder.`);
  }
}

/** The parts of tokenizer.json vistune and the tokenizer library index into, checked before either does. */
function checkTokenizerJson(json: unknown, path: string): asserts json is TokenizerJSON {
  if (!isObject(json) || !isObject(json.model) || typeof json.model.type !== 'string') {
    throw new Error(
      `${path} has no "model" object with a string "type"; it is not a Hugging Face tokenizer.json (re-export the tokenizer folder).`,
    );
  }
  const added = json.added_tokens;
  if (added === undefined || added === null) return;
  const bad = Array.isArray(added)
    ? added.findIndex((t) => !isObject(t) || !Number.isInteger(t.id) || typeof t.content !== 'string')
    : -2;
  if (bad !== -1) {
    const where =
      bad === -2
        ? '"added_tokens" is not a list'
        : `"added_tokens"[${bad}] lacks an integer "id" or a string "content"`;
    throw new Error(`${path}: ${where}; re-export the tokenizer folder.`);
  }
}

/** Reads tokenizer.json (required), tokenizer_config.json, special_tokens_map.json and chat_template.{jinja,json}. */
export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizerText = await readTextIfPresent(tokenizerPath);
  if (tokenizerText === null) {
    throw new Error(
      `Tokenizer folder ${dir} has no tokenizer.json (looked for ${tokenizerPath}). ` +
        'vistune needs the fast-tokenizer file; in Python, AutoTokenizer.from_pretrained(...).save_pretrained(dir) writes it.',
    );
  }
  const tokenizerJson = parseJsonFile<TokenizerJSON>(tokenizerPath, tokenizerText);
  checkTokenizerJson(tokenizerJson, tokenizerPath);

  const configPath = join(dir, 'tokenizer_config.json');
  const configText = await readTextIfPresent(configPath);
  const tokenizerConfig =
    configText === null ? {} : parseJsonFile<TokenizerConfigJSON>(configPath, configText);
  checkObject(tokenizerConfig, configPath);

  const mapPath = join(dir, 'special_tokens_map.json');
  const mapText = await readTextIfPresent(mapPath);
  const specialTokensMap = mapText === null ? null : parseJsonFile<SpecialTokensMapJSON>(mapPath, mapText);
  if (specialTokensMap !== null) checkObject(specialTokensMap, mapPath);

  // Newer exports put the template in its own file; it takes precedence over tokenizer_config.json, as in transformers.
  const jinjaPath = join(dir, 'chat_template.jinja');
  const templateJsonPath = join(dir, 'chat_template.json');
  let chatTemplateFile: ChatTemplateFile | null = null;
  const jinjaText = await readTextIfPresent(jinjaPath);
  if (jinjaText !== null) {
    chatTemplateFile = { fileName: 'chat_template.jinja', template: jinjaText };
  } else {
    const templateJsonText = await readTextIfPresent(templateJsonPath);
    if (templateJsonText !== null) {
      const parsed = parseJsonFile<{ chat_template?: unknown }>(templateJsonPath, templateJsonText);
      if (typeof parsed.chat_template !== 'string') {
        throw new Error(`${templateJsonPath} has no string field "chat_template".`);
      }
      chatTemplateFile = { fileName: 'chat_template.json', template: parsed.chat_template };
    }
  }
  const chatTemplatePaths = [jinjaPath, templateJsonPath, `${configPath} (field "chat_template")`];
  return { tokenizerJson, tokenizerConfig, specialTokensMap, chatTemplateFile, chatTemplatePaths };
}

/** Writes the files back in the layout `AutoTokenizer.from_pretrained(dir)` reads. */
export async function writeTokenizerFiles(
  dir: string,
  files: Pick<TokenizerFiles, 'tokenizerJson' | 'tokenizerConfig' | 'specialTokensMap' | 'chatTemplateFile'>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson, null, 2));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig, null, 2));
  if (files.specialTokensMap !== null) {
    await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify(files.specialTokensMap, null, 2));
  }
  const templateFile = files.chatTemplateFile;
  if (templateFile?.fileName === 'chat_template.jinja') {
    await writeFile(join(dir, templateFile.fileName), templateFile.template);
  } else if (templateFile?.fileName === 'chat_template.json') {
    await writeFile(
      join(dir, templateFile.fileName),
      JSON.stringify({ chat_template: templateFile.template }, null, 2),
    );
  }
}
