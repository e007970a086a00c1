export * from './program';
export { findRuns, meanStd, writeReport, type ReportSection } from './report';
