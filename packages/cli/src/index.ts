export * from './program';
export { findRuns, groupScores, loadRun, meanStd, pairedComparisons, writeReport, type PairedComparison, type ReportSection, type RunRecord } from './report';
export { trainerFor } from './experiment';
