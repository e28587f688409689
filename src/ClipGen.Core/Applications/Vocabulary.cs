using System.Security.Cryptography;
using ClipGen.Text;

namespace ClipGen.Applications;

/// <summary>
/// Finds the CLIP BPE vocabulary for a model: an explicit path, else <c>$CLIPGEN_VOCAB</c>, else the weights' folder
/// (Hugging Face ships <c>vocab.json</c> + <c>merges.txt</c> beside the weights; OpenAI's
/// <c>bpe_simple_vocab_16e6.txt.gz</c> counts too), else the download cache, which fetches OpenAI's file on first use
/// and checks its sha256.
/// </summary>
public static class Vocabulary
{
    /// <summary>OpenAI's vocabulary file name.</summary>
    public const string OpenAIFileName = "bpe_simple_vocab_16e6.txt.gz";

    /// <summary>Where OpenAI publishes it.</summary>
    public static readonly Uri OpenAIUrl = new("https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz");

    /// <summary>Its sha256 (lower-case hex).</summary>
    public const string OpenAISha256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a";

    /// <summary>Overrides the download URL (a mirror, or a local server in tests).</summary>
    public const string UrlEnvironmentVariable = "CLIPGEN_VOCAB_URL";

    /// <summary>
    /// The vocabulary to load (a file or a folder <see cref="ClipTokenizer.FromFile"/> accepts), in the order above.
    /// <paramref name="cacheDirectory"/> defaults to <see cref="Downloads.CacheFolders.Default"/> ($CLIPGEN_CACHE, else ~/.cache/clipgen); with <paramref name="allowDownload"/>
    /// false a missing cache entry is an error instead of a download. The download comes from
    /// <paramref name="downloadUrl"/>, else $CLIPGEN_VOCAB_URL, else <see cref="OpenAIUrl"/>, and must match <see cref="OpenAISha256"/>.
    /// </summary>
    public static string Resolve(string? explicitPath, string? weightsPath, string? cacheDirectory = null, bool allowDownload = true,
        Uri? downloadUrl = null, HttpClient? http = null)
    {
        if (!string.IsNullOrEmpty(explicitPath) || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(TextTokenizers.VocabEnvironmentVariable)))
            return TextTokenizers.ResolveVocabPath(explicitPath);
        if (!string.IsNullOrEmpty(weightsPath))
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(weightsPath));
            if (dir is not null)
            {
                if (File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt"))) return Path.Combine(dir, "vocab.json");
                if (File.Exists(Path.Combine(dir, OpenAIFileName))) return Path.Combine(dir, OpenAIFileName);
            }
        }
        var cache = cacheDirectory ?? Downloads.CacheFolders.Default;
        var cached = Path.Combine(cache, OpenAIFileName);
        if (File.Exists(cached)) return cached;
        if (!allowDownload)
            throw new ClipGenException($"no CLIP BPE vocabulary: give a vocabulary file, set CLIPGEN_VOCAB, or put {OpenAIFileName} in {cache}") { Setting = ClipGenSetting.Vocabulary };
        var env = Environment.GetEnvironmentVariable(UrlEnvironmentVariable);
        var url = downloadUrl ?? (string.IsNullOrEmpty(env) ? OpenAIUrl : new Uri(env));
        DownloadVerified(url, cached, OpenAISha256, http);
        return cached;
    }

    /// <summary>
    /// Downloads <paramref name="url"/> to <paramref name="destination"/>: into a temporary file beside it, checked
    /// against <paramref name="sha256"/>, then renamed, so that the destination is either absent or complete and right.
    /// </summary>
    public static void DownloadVerified(Uri url, string destination, string sha256, HttpClient? http = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(destination);
        var full = Path.GetFullPath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.part");
        var client = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        try
        {
            string actual;
            using (var response = client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).GetAwaiter().GetResult())
            {
                if (!response.IsSuccessStatusCode)
                    throw new ClipGenException($"downloading {url} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                using var body = response.Content.ReadAsStream(cancellationToken);
                using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[81920];
                int n;
                while ((n = body.Read(buffer, 0, buffer.Length)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    file.Write(buffer, 0, n);
                }
                file.Flush(flushToDisk: true);
                actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            }
            if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
                throw new ClipGenException($"downloading {url}: sha256 is {actual}, expected {sha256}; the file was not saved");
            File.Move(temp, full, overwrite: true);
        }
        catch (HttpRequestException e)
        {
            throw new ClipGenException($"downloading {url} failed ({e.Message}); give a vocabulary file or set CLIPGEN_VOCAB to a local copy", e) { Setting = ClipGenSetting.Vocabulary };
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ClipGenException($"downloading {url} timed out; give a vocabulary file or set CLIPGEN_VOCAB to a local copy", e) { Setting = ClipGenSetting.Vocabulary };
        }
        finally
        {
            if (http is null) client.Dispose();
            try { if (File.Exists(temp)) File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
