// The log-space helpers live with the fused ops, whose composite forms use them.
export { klFromLogProbs, klToMixture, logAddExp, logRatioToMixture, softmaxBackward } from '@skd/ops';
