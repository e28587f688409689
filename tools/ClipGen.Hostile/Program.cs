using System.Diagnostics;
using System.Globalization;
using ClipGen.Hostile;

// clipgen-hostile [--clipgen path/to/ClipGen.Cli.dll] [--only substring] [--trx file.trx] [--keep]
// Generates the hostile-input corpus of issue 12 in a temporary folder, runs clipgen on each case and prints a table;
// exits 1 when any case fails. Large inputs are generated here, never committed.
var options = RunnerOptions.Parse(args);
var corpus = new Corpus(options);
var results = new List<CaseResult>();
var total = Stopwatch.StartNew();
Console.WriteLine($"hostile-input corpus: clipgen = {options.ClipGen}");
Console.WriteLine($"{"defect",-7} {"case",-44} {"result",-6} {"exit",4} {"peak MB",8} {"limit",6} {"s",6} {"limit",6}  note");
try
{
    foreach (var c in corpus.Cases())
    {
        if (options.Only is { } only && !c.Name.Contains(only, StringComparison.OrdinalIgnoreCase) && c.Defect != only) continue;
        var r = corpus.Run(c);
        results.Add(r);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{c.Defect,-7} {c.Name,-44} {(r.Skipped ? "skip" : r.Passed ? "pass" : "FAIL"),-6} {r.ExitCode,4} {r.PeakMB,8:F0} {c.MaxMB,6} {r.Seconds,6:F1} {c.MaxSeconds,6:F0}  {r.Note}"));
    }
}
finally
{
    corpus.Dispose();
}
int passed = results.Count(r => r.Passed && !r.Skipped), failed = results.Count(r => !r.Passed && !r.Skipped), skipped = results.Count(r => r.Skipped);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"hostile corpus: {passed} passed, {failed} failed, {skipped} skipped in {total.Elapsed.TotalSeconds:F0} s"));
if (options.Trx is { } trx) Trx.Write(trx, results);
return failed == 0 ? 0 : 1;
