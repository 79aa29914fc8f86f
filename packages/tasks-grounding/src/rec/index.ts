export {
  type RecPrediction,
  type RecScore,
  type RecTruthRecord,
  type ScoreRecOptions,
  scoreRecPredictions,
} from './score.js';
