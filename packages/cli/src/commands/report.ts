import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { FormatError } from '@skd/core';
import { runEvaluation } from '@skd/experiment';
import { FIGURE_FORMATS, findRuns, joinEvaluations, parsePairedSpec, prepareBaselines, writeFigures, writeReport, type FigureFormat } from '@skd/report';
import { collect, figureFormats } from '../options';
import type { CommandContext } from '../context';

/** `skd report`: tables, paired tests, charts and figures from run folders (baselines evaluated here). */
export function reportCommand(program: Command, { io, signal, exit }: CommandContext): void {
  program
    .command('report')
    .description('results table (mean and std over seeds, 95% bootstrap intervals over test examples) and charts from run folders, as Markdown and HTML')
    .argument(
      '<paths...>',
      "run folders, or folders holding them (a sweep's out); several paths give one section each, except folders of evaluations alone (skd eval --out), which join the section scored on the same test examples",
    )
    .option('--out <dir>', 'where report.md and report.html go', 'report')
    .option('--paired <axis=value>', 'paired bootstrap tests of the groups with this sweep value against each other value of the axis, e.g. method=skd')
    .option(
      '--baseline <path>',
      "a model checkpoint (the starting student, the teacher) evaluated on the same test examples as the runs of each section (with the first run's config; kept under --out/baselines), or a finished run or eval folder; a row in every section (repeatable)",
      collect,
      [],
    )
    .option('--metric <name>', "the headline metric of the figure and the first table (default: the task's own: passRate, exactMatch, chrf or rougeL)")
    .option(
      '--format <list>',
      `also write each section's results-at-a-glance figure (and its ablation figures) to --out/figures, as ${FIGURE_FORMATS.join(' and/or ')} (comma-separated; png needs Chromium)`,
      figureFormats,
    )
    .option('--json', 'print the results as one JSON document (also written to report.json) instead of a line', false)
    .action(async (paths: string[], options: { out: string; paired?: string; baseline: string[]; metric?: string; format?: FigureFormat[]; json: boolean }) => {
      for (const p of paths)
        if (!fs.existsSync(p)) throw new FormatError(p, 'no such folder', { hint: "give run folders, or a folder holding them (a sweep's out)" });
      const paired = options.paired !== undefined ? parsePairedSpec(options.paired) : undefined;
      // Evaluation folders given beside a sweep (skd eval --out) become rows of its section.
      const found = joinEvaluations(paths.map((p) => ({ title: path.basename(path.resolve(p)), runDirs: findRuns([p]) })));
      if (options.baseline.length > 0) exit.catchInterrupts();
      const sections = [];
      for (const section of found) {
        const baselines = await prepareBaselines(options.baseline, section, options.out, (b) =>
          runEvaluation({ ...b, split: 'test', io, ...(signal ? { signal } : {}) }),
        );
        sections.push({ ...section, runDirs: [...section.runDirs, ...baselines] });
      }
      const command = [
        'skd report',
        ...paths,
        '--out',
        options.out,
        ...(options.paired ? ['--paired', options.paired] : []),
        ...options.baseline.flatMap((b) => ['--baseline', b]),
      ].join(' ');
      const written = writeReport(sections, options.out, {
        command,
        ...(paired ? { paired } : {}),
        ...(options.metric !== undefined ? { metric: options.metric } : {}),
        onSkip: (dir, error) => io.err(`warning: ${dir} left out of the report: ${error.message}`),
      });
      const { runs, groups, skipped } = written;
      if (options.format) for (const file of writeFigures(written.figures, path.join(options.out, 'figures'), options.format)) io.err(`figure: ${file}`);
      if (options.json) io.out(JSON.stringify({ runs, groups, skipped, sections: written.sections }));
      else io.out(`report: ${runs} runs in ${groups} groups -> ${options.out}/report.md, ${options.out}/report.html, ${options.out}/report.json`);
    });
}
