using System.Text.Json;
using ClipGen.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Imaging;

/// <summary>Our preprocessing against OpenAI's _transform(224) run with PIL 9.4 + torchvision 0.14 (fixtures/preprocess).</summary>
public sealed class FixtureParityTests(ITestOutputHelper output)
{
    static string Dir => Path.Combine(Fixtures.Root, "preprocess");

    public static TheoryData<string> Images()
    {
        var data = new TheoryData<string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "index.json")));
        foreach (var img in doc.RootElement.GetProperty("images").EnumerateArray()) data.Add(img.GetProperty("image").GetString()!);
        return data;
    }

    /// <summary>JPEG tolerance: see docs/preprocessing.md (libjpeg-turbo in PIL vs Skia's decoder).</summary>
    const double JpegMaxDiff = 0.016;
    const double JpegMinIdentical = 0.99;

    [Theory]
    [MemberData(nameof(Images))]
    public void Matches_openai_transform(string image)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "index.json")));
        var entry = doc.RootElement.GetProperty("images").EnumerateArray().Single(e => e.GetProperty("image").GetString() == image);
        var (expected, shape) = SafeTensorsTestReader.ReadF32(Path.Combine(Dir, entry.GetProperty("expected").GetString()!), "pixel_values");
        Assert.Equal(new long[] { 3, 224, 224 }, shape);

        var pre = new ImagePreprocessor();
        var actual = pre.Preprocess(Path.Combine(Dir, image));

        var (maxDiff, identical) = Compare(expected, actual);
        string format = entry.GetProperty("format").GetString()!;
        output.WriteLine($"{image} ({format}, mode {entry.GetProperty("mode").GetString()}): max |diff| = {maxDiff:G6}, bit-identical = {identical * 100:F4}%");

        if (format == "JPEG")
        {
            Assert.True(maxDiff <= JpegMaxDiff, $"max |diff| {maxDiff} > {JpegMaxDiff}");
            Assert.True(identical >= JpegMinIdentical, $"only {identical:P4} identical");
        }
        else
        {
            Assert.True(maxDiff <= 0.016, $"max |diff| {maxDiff} > 0.016");
            Assert.True(identical >= 0.99, $"only {identical:P4} identical");
        }
    }

    /// <summary>Both JPEG decoders against PIL's (libjpeg-turbo 2.1.5), before any resampling: every byte equal.</summary>
    [Theory]
    [InlineData(JpegDecoder.Skia)]
    [InlineData(JpegDecoder.Auto)]
    public void Jpeg_decode_matches_pil(JpegDecoder decoder)
    {
        var path = Path.Combine(Dir, "expected", "synth_q90_420.safetensors");
        var (entries, start, bytes) = SafeTensorsTestReader.Open(path);
        var e = entries["decoded_u8"];
        var pil = bytes.AsSpan((int)(start + e.Begin), (int)(e.End - e.Begin));
        using var ours = ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(Dir, "images", "synth_q90_420.jpg")), "jpg", long.MaxValue, decoder);
        int max = 0, differing = 0, n = ours.Width * ours.Height;
        Assert.Equal(pil.Length, n * 3);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
            {
                int d = Math.Abs(pil[3 * i + c] - ours.Rgba[4 * i + c]);
                if (d != 0) differing++;
                max = Math.Max(max, d);
            }
        output.WriteLine($"JPEG decode ({decoder}, libturbojpeg {(TurboJpeg.IsAvailable ? "available" : "not installed")}): {differing} of {n * 3} values differ from PIL's ({100.0 * differing / (n * 3):F4}%), max {max} levels");
        Assert.True(max == 0, $"the {decoder} JPEG decode differs from PIL's in {differing} values, by up to {max} levels");
    }

    internal static (double MaxDiff, double Identical) Compare(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        long same = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) same++;
            max = Math.Max(max, Math.Abs((double)expected[i] - actual[i]));
        }
        return (max, (double)same / expected.Length);
    }
}
