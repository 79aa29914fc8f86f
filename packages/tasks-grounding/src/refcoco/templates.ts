// Question and answer templates of the converted RefCOCO tasks. `{expr}` is the referring expression,
// `{region}` the marked region (codec box text, or the `<region>` placeholder).

export const REC_TEMPLATES: readonly string[] = [
  '<image>\nWhere is {expr}? Answer with its box.',
  '<image>\nPlease give the bounding box of the object this sentence describes: {expr}',
  '<image>\nLocate {expr} in the image and answer with its box.',
];

export const REG_TEMPLATES: readonly string[] = [
  '<image>\nWhat is in the region {region}? Answer with a short referring expression.',
  '<image>\nPlease describe the region {region} in a few words that single it out.',
];

/** LISA's referring-segmentation questions (SHORT_QUESTION_LIST). */
export const RES_TEMPLATES: readonly string[] = [
  '<image>\nCan you segment the {expr} in this image?',
  '<image>\nPlease segment the {expr} in this image.',
  '<image>\nWhat is {expr} in this image? Please respond with segmentation mask.',
  '<image>\nWhat is {expr} in this image? Please output segmentation mask.',
];

/** LISA's answers (ANSWER_LIST); `{seg}` is the mask head's trigger token. */
export const RES_ANSWERS: readonly string[] = [
  'It is {seg}.',
  'Sure, {seg}.',
  'Sure, it is {seg}.',
  'Sure, the segmentation result is {seg}.',
  '{seg}.',
];

export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);
}

/** Throws when a template lacks a field the task needs (a typo would silently drop the expression). */
export function checkTemplates(task: string, templates: readonly string[], field: string): void {
  if (templates.length === 0) throw new Error(`refcoco: templates.${task} is empty; give at least one`);
  for (const t of templates)
    if (!t.includes(`{${field}}`))
      throw new Error(`refcoco: templates.${task} entry ${JSON.stringify(t)} has no {${field}}; add it`);
}
