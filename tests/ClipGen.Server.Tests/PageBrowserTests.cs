using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit;

namespace ClipGen.Server.Tests;

/// <summary>
/// The page at / in a real browser: Debian's chromium (headless) driven by Playwright. Playwright's own browser download is
/// not used. CI installs chromium (.ci/run); elsewhere the test is skipped when /usr/bin/chromium is missing.
/// </summary>
public class PageBrowserTests(IndexedServerFixture fixture) : IClassFixture<IndexedServerFixture>
{
    const string Chromium = "/usr/bin/chromium";

    static async Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
        await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox"], // CI runs as root
        });

    async Task<int[]> ServerSearch(object body)
    {
        var r = await fixture.Running.Client.PostAsJsonAsync("/v1/search", body);
        r.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("data").EnumerateArray().Select(h => h.GetProperty("id").GetInt32()).ToArray();
    }

    static async Task<int[]> ShownIds(IPage page) =>
        (await page.Locator("#results figure.hit").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.id)"))
        .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Waits until the results show <paramref name="first"/> first and every thumbnail has loaded as an image.</summary>
    static async Task WaitForThumbnails(IPage page, int first, int count)
    {
        await page.WaitForFunctionAsync(
            "([first, count]) => { const figs = [...document.querySelectorAll('#results figure.hit')];" +
            " return figs.length === count && figs[0].dataset.id === String(first) &&" +
            " figs.every(f => { const i = f.querySelector('img.thumb'); return i.complete && i.naturalWidth > 0; }); }",
            new object[] { first, count }, new PageWaitForFunctionOptions { Timeout = 120_000 });
    }

    [SkippableFact]
    public async Task The_page_searches_by_text_and_by_image_and_classifies_in_a_real_browser()
    {
        if (!File.Exists(Chromium))
        {
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", "CI must have Debian's chromium (.ci/run installs it)");
            Skip.If(true, $"{Chromium} is not installed (apt-get install chromium)");
        }
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(120_000);
        var consoleErrors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        var baseUrl = fixture.Running.Client.BaseAddress!;
        await page.GotoAsync(baseUrl.ToString());
        await page.WaitForFunctionAsync("() => document.getElementById('model').textContent.startsWith('tiny-vit')");

        // Type a query: the page shows the server's top k as loaded thumbnails, in the server's order.
        int k = 5;
        await page.FillAsync("#k", k.ToString(CultureInfo.InvariantCulture));
        await page.FillAsync("#query", "a red square");
        await page.ClickAsync("#search");
        var expected = await ServerSearch(new { query = "a red square", k });
        await WaitForThumbnails(page, expected[0], k);
        Assert.Equal(expected, await ShownIds(page));

        // Choose an image file: searching by an indexed image puts that image first.
        var horse = fixture.Files.Single(f => f.EndsWith("horse.png", StringComparison.Ordinal));
        int horseRow = fixture.Index.Files.ToList().IndexOf(horse);
        await page.SetInputFilesAsync("#file", Fixtures.RealImages.Single(f => f.EndsWith("horse.png", StringComparison.Ordinal)));
        await WaitForThumbnails(page, horseRow, k);
        Assert.Equal(await ServerSearch(new { query = Fixtures.DataUrl(horse), k }), await ShownIds(page));

        // Drop an image on the drop zone (a real drop event carrying a File).
        var coffee = fixture.Files.Single(f => f.EndsWith("coffee.png", StringComparison.Ordinal));
        int coffeeRow = fixture.Index.Files.ToList().IndexOf(coffee);
        var dataTransfer = await page.EvaluateHandleAsync(
            "b64 => { const dt = new DataTransfer(); const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));" +
            " dt.items.add(new File([bytes], 'coffee.png', { type: 'image/png' })); return dt; }",
            Convert.ToBase64String(File.ReadAllBytes(coffee)));
        await page.DispatchEventAsync("#drop", "drop", new { dataTransfer });
        await WaitForThumbnails(page, coffeeRow, k);

        // Classify an uploaded image against typed labels: the page shows the server's probabilities.
        string[] labels = ["a red square", "a cup of coffee", "a diagram"];
        await page.SetInputFilesAsync("#classify-file", coffee);
        await page.FillAsync("#labels", string.Join(", ", labels));
        await page.ClickAsync("#classify");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#classify-result tr.label-row').length === 3");
        var shown = await page.Locator("#classify-result tr.label-row").EvaluateAllAsync<string[][]>(
            "rows => rows.map(r => [r.dataset.label, r.dataset.probability])");
        var r = await fixture.Running.Client.PostAsJsonAsync("/v1/classify", new { images = new[] { Fixtures.DataUrl(coffee) }, labels });
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        var server = doc.RootElement.GetProperty("data")[0].GetProperty("scores").EnumerateArray()
            .ToDictionary(s => s.GetProperty("label").GetString()!, s => s.GetProperty("probability").GetDouble());
        Assert.Equal(labels.Order(), shown.Select(s => s[0]).Order());
        foreach (var row in shown) Assert.Equal(server[row[0]], double.Parse(row[1], CultureInfo.InvariantCulture), 1e-9);
        var probabilities = shown.Select(s => double.Parse(s[1], CultureInfo.InvariantCulture)).ToArray();
        Assert.True(probabilities.SequenceEqual(probabilities.OrderByDescending(p => p)), "ranked by probability");

        // An error from the server is shown, not thrown away: a non-image file.
        var text = Path.Combine(fixture.Folder, "notes.txt");
        await File.WriteAllTextAsync(text, "not an image");
        await page.SetInputFilesAsync("#file", text);
        await page.WaitForFunctionAsync("() => document.getElementById('search-error').textContent.length > 0");

        var shot = Environment.GetEnvironmentVariable("CLIPGEN_SCREENSHOT");
        if (!string.IsNullOrEmpty(shot)) await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        Assert.Empty(consoleErrors);
    }
}
