// Pictures of predictions: labelled box outlines and tinted masks drawn over an image.
export {
  BOX_COLOURS,
  type BoxColour,
  type BoxColourName,
  type DrawBoxesOptions,
  drawBoxes,
  glyphRows,
  type LabelledBox,
  labelSize,
  type Rgb,
} from './boxes.js';
export { MASK_COLOURS, overlayMasks } from './masks.js';
