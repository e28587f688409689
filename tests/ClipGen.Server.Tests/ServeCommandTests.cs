using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace ClipGen.Server.Tests;

/// <summary>
/// The real command, end to end: <c>clipgen serve</c> started as a child process on 127.0.0.1 (port 0: the OS picks one, which
/// the start line names), asked for the fixture captions' embeddings, then stopped with SIGTERM, which finishes and exits 0.
/// </summary>
public class ServeCommandTests
{
    static string CliDll()
    {
        var dll = Path.Combine(ClipGen.Tests.Fixtures.RepoRoot, "src", "ClipGen.Cli", "bin", "Debug", "net10.0", "ClipGen.Cli.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} is not built (./test.sh builds the solution first)");
    }

    [Fact]
    public async Task Clipgen_serve_answers_the_reference_text_features_and_stops_cleanly_on_sigterm()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { CliDll(), "serve", "--model", Fixtures.TinyVitSpec, "--weights", Fixtures.TinyVitWeights, "--vocab", Fixtures.Vocab,
                     "--backend", "onnx", "--urls", "http://127.0.0.1:0", "--quiet" })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = new System.Text.StringBuilder();
        var address = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { address.TrySetException(new InvalidOperationException("clipgen serve ended: " + stderr)); return; }
            lock (stderr) stderr.AppendLine(e.Data);
            if (Regex.Match(e.Data, @"on (http://127\.0\.0\.1:\d+)") is { Success: true } m) address.TrySetResult(m.Groups[1].Value);
        };
        process.BeginErrorReadLine();
        try
        {
            var baseUrl = await address.Task.WaitAsync(TimeSpan.FromMinutes(3));
            using var client = new HttpClient { BaseAddress = new Uri(baseUrl) };
            var captions = Fixtures.TinyVitConfig().GetProperty("captions").EnumerateArray().Select(e => e.GetString()!).ToArray();
            var (features, shape) = Fixtures.ReadF32(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"), "text_features");
            int d = (int)shape[1];
            using var response = await client.PostAsJsonAsync("/v1/embeddings", new { input = captions });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var data = doc.RootElement.GetProperty("data").EnumerateArray().ToArray();
            Assert.Equal(captions.Length, data.Length);
            for (int i = 0; i < captions.Length; i++)
            {
                var actual = data[i].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
                // Tolerance 1e-4 on unit vectors, as the fixtures' README gives.
                Assert.True(Fixtures.MaxAbsDiff(Fixtures.Normalized(features.AsSpan(i * d, d)), actual) <= 1e-4, $"caption {i}");
            }
        }
        finally
        {
            if (!process.HasExited) Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            if (!process.WaitForExit(60_000)) process.Kill(entireProcessTree: true);
        }
        Assert.Equal(0, process.ExitCode);
    }
}
