using System.Formats.Tar;
using System.Text;
using ClipGen.Datasets;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace ClipGen.Tests.Datasets;

public class DatasetTests
{
    /// <summary>Writes a tar of (name, bytes) members, in order.</summary>
    internal static void WriteTar(string path, IEnumerable<(string Name, byte[] Data)> members)
    {
        using var fs = File.Create(path);
        using var tar = new TarWriter(fs, TarEntryFormat.Pax);
        foreach (var (name, data) in members)
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
    }

    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData("shard-{00000..00003}.tar", "shard-00000.tar shard-00001.tar shard-00002.tar shard-00003.tar")]
    [InlineData("s{8..11}.tar", "s8.tar s9.tar s10.tar s11.tar")]
    [InlineData("s{08..11}.tar", "s08.tar s09.tar s10.tar s11.tar")]
    [InlineData("{a,b}/{1..2}", "a/1 a/2 b/1 b/2")]
    [InlineData("x{1..7..3}", "x1 x4 x7")]
    [InlineData("x{3..1}", "x3 x2 x1")]
    [InlineData("{a..c}", "a b c")]
    [InlineData("a{b,c{d,e}}f", "abf acdf acef")]
    [InlineData("plain.tar", "plain.tar")]
    [InlineData("lit{x}.tar", "lit{x}.tar")]
    [InlineData("esc\\{1..2\\}.tar", "esc{1..2}.tar")]
    [InlineData("{,b}c", "c bc")]
    public void Brace_expansion_matches_braceexpand(string pattern, string expected)
    {
        Assert.Equal(expected.Split(' '), BraceExpansion.Expand(pattern));
    }

    [Fact]
    public void A_runaway_range_is_refused()
    {
        var e = Assert.Throws<ClipGenException>(() => BraceExpansion.Expand("s{0..999999999}.tar"));
        Assert.Contains("more than", e.Message);
    }

    [Fact]
    public void Webdataset_samples_group_consecutive_members_by_key()
    {
        var dir = TestUtil.TempDir();
        var path = Path.Combine(dir, "s.tar");
        WriteTar(path,
        [
            ("__index__", Utf8("ignored")),
            ("d/000001.jpg", [1, 2, 3]),
            ("d/000001.txt", Utf8(" a cat \n")),
            ("d/000001.json", Utf8("{\"url\": \"http://x/1\"}")),
            ("d/000002.seg.PNG", [4]),
            ("d/000002.png", [5]),
            ("d/000003.txt", Utf8("only text")),
            ("d/000004.jpg", [6]),
            ("d/000004.jpg", [7]),
            ("d/000005.webp", [8]),
        ]);
        var problems = new List<WebDatasetProblem>();
        var samples = WebDatasetReader.Read(path, problems.Add).ToList();
        Assert.Equal(["d/000001", "d/000002", "d/000003", "d/000005"], samples.Select(s => s.Key));
        Assert.Equal("a cat", samples[0].Caption);
        Assert.Equal("{\"url\": \"http://x/1\"}", samples[0].Json);
        Assert.Equal("jpg", samples[0].Image!.Value.Extension);
        Assert.Equal(new byte[] { 1, 2, 3 }, samples[0].Image!.Value.Data);
        Assert.Equal(["seg.png", "png"], samples[1].Files.Keys);
        Assert.Equal(new byte[] { 5 }, samples[1].Image!.Value.Data);
        Assert.Null(samples[2].Image);
        Assert.Equal("webp", samples[3].Image!.Value.Extension);
        var p = Assert.Single(problems);
        Assert.Equal("d/000004", p.Key);
        Assert.Contains("two members with the extension 'jpg'", p.ToString());
        Assert.Equal(0, samples[0].Offset % 512);
    }

    [Fact]
    public void A_truncated_or_corrupt_shard_names_the_shard_and_the_offset_after_its_good_samples()
    {
        var dir = TestUtil.TempDir();
        var path = Path.Combine(dir, "good.tar");
        WriteTar(path, Enumerable.Range(0, 4).SelectMany(i => new[] { ($"{i:D3}.jpg", new byte[3000]), ($"{i:D3}.txt", Utf8($"caption {i}")) }));
        var bytes = File.ReadAllBytes(path);

        var truncated = Path.Combine(dir, "truncated.tar");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var got = new List<string>();
        var e = Assert.Throws<WebDatasetShardException>(() => { foreach (var s in WebDatasetReader.Read(truncated)) got.Add(s.Key); });
        Assert.Equal(["000", "001"], got.Take(2));
        Assert.Contains(truncated, e.Message);
        Assert.Contains("truncated tar", e.Message);
        Assert.Matches(@"at byte \d+$", e.Message);
        Assert.InRange(e.Offset, 1, bytes.Length / 2);

        var corrupt = Path.Combine(dir, "corrupt.tar");
        var damaged = (byte[])bytes.Clone();
        // The third member (sample 001's image) gets a broken header checksum. A PAX member is an extended header
        // block, its data block, the ustar header, then the data padded to 512: 1536 + 3072 for the images, 2048 for the captions.
        long third = 1536 + 3072 + 2048;
        damaged[third + 148] ^= 0x55;
        File.WriteAllBytes(corrupt, damaged);
        got.Clear();
        var e2 = Assert.Throws<WebDatasetShardException>(() => { foreach (var s in WebDatasetReader.Read(corrupt)) got.Add(s.Key); });
        Assert.Equal(["000"], got);
        Assert.Equal(third, e2.Offset);
        Assert.Contains("corrupt tar", e2.Message);
    }

    [Fact]
    public void Npy_headers_are_version_1_0_and_64_byte_aligned_and_values_round_trip()
    {
        foreach (var dtype in new[] { NpyDType.Float16, NpyDType.Float32 })
            foreach (var (rows, cols) in new[] { (0, 3), (1, 1), (7, 512), (123456, 768) })
            {
                var h = NpyFile.Header(dtype, rows, cols);
                Assert.Equal(0, h.Length % 64);
                Assert.Equal((byte)0x93, h[0]);
                Assert.Equal("NUMPY", Encoding.ASCII.GetString(h, 1, 5));
                Assert.Equal([1, 0], h[6..8]);
                Assert.Equal(h.Length - 10, BitConverter.ToUInt16(h, 8));
                Assert.Equal((byte)'\n', h[^1]);
                Assert.Contains($"'shape': ({rows}, {cols}), }}", Encoding.ASCII.GetString(h));
            }
        var values = new float[] { 0, 1, -2.5f, 1e-5f, 65504, 0.1f };
        foreach (var dtype in new[] { NpyDType.Float16, NpyDType.Float32 })
        {
            using var ms = new MemoryStream();
            NpyFile.Write(ms, values, 3, dtype);
            ms.Position = 0;
            var back = NpyFile.Read(ms, "test");
            Assert.Equal((2L, 3, dtype), (back.Rows, back.Columns, back.DType));
            for (int i = 0; i < values.Length; i++)
                Assert.Equal(dtype == NpyDType.Float16 ? (float)(Half)values[i] : values[i], back.Values[i]);
        }
    }

    [Fact]
    public void Task_partitions_are_disjoint_contiguous_and_cover_the_list()
    {
        Prop.ForAll(Gen.Choose(0, 500).ToArbitrary(), Gen.Choose(1, 40).ToArbitrary(), (m, n) =>
        {
            var all = Enumerable.Range(0, m).ToArray();
            var parts = Enumerable.Range(0, n).Select(i => new TaskPartition(i, n).Select(all)).ToList();
            Assert.Equal(all, parts.SelectMany(p => p));               // union in order = whole, hence disjoint
            Assert.True(parts.Max(p => p.Count) - parts.Min(p => p.Count) <= 1);
        }).QuickCheckThrowOnFailure();
        Assert.Equal(new TaskPartition(3, 10), TaskPartition.Parse("3/10"));
        foreach (var bad in new[] { "10/10", "-1/3", "3", "a/b", "1/0" })
            Assert.Contains("i/N", Assert.Throws<ClipGenException>(() => TaskPartition.Parse(bad)).Message.Replace("i must be in 0..N-1", "i/N"));
    }

    [Fact]
    public void Image_lists_read_csv_tsv_and_parquet_with_configurable_columns()
    {
        var dir = TestUtil.TempDir();
        File.WriteAllText(Path.Combine(dir, "l.csv"), "id,filepath,title\n1,a.png,\"a cat, sitting\"\n2,,empty\n3,/abs/b.jpg,dog\nbroken,row\n");
        var csv = ImageListReader.Read(Path.Combine(dir, "l.csv"));
        Assert.True(csv.HasCaptions);
        Assert.Equal([Path.Combine(dir, "a.png"), "/abs/b.jpg"], csv.Entries.Select(e => e.Path));
        Assert.Equal(["a cat, sitting", "dog"], csv.Entries.Select(e => e.Caption));
        Assert.Equal(["l.csv:3: empty 'filepath'", "l.csv:5: expected 3 fields, found 2"], csv.Problems.Select(p => $"{Path.GetFileName(p.File)}:{p.Row}: {p.Reason}"));

        File.WriteAllText(Path.Combine(dir, "l.tsv"), "img\tcap\nx.png\tone\n");
        var tsv = ImageListReader.Read(Path.Combine(dir, "l.tsv"), "img", "cap", captionRequired: true);
        Assert.Equal("one", Assert.Single(tsv.Entries).Caption);
        var noCaption = ImageListReader.Read(Path.Combine(dir, "l.tsv"), "img");
        Assert.False(noCaption.HasCaptions);
        Assert.Null(noCaption.Entries[0].Caption);
        Assert.Contains("no 'nope' column", Assert.Throws<ClipGenException>(() => ImageListReader.Read(Path.Combine(dir, "l.tsv"), "img", "nope", captionRequired: true)).Message);

        // Parquet written by another implementation (Apache's C++ library through ParquetSharp).
        var pq = Path.Combine(dir, "l.parquet");
        using (var writer = new ParquetSharp.ParquetFileWriter(pq, [new ParquetSharp.Column<string>("filepath"), new ParquetSharp.Column<string>("title"), new ParquetSharp.Column<long>("n")]))
        {
            using var group = writer.AppendRowGroup();
            using (var w = group.NextColumn().LogicalWriter<string>()) w.WriteBatch(["p/1.png", "p/2.png"]);
            using (var w = group.NextColumn().LogicalWriter<string>()) w.WriteBatch(["first", null!]);
            using (var w = group.NextColumn().LogicalWriter<long>()) w.WriteBatch([1L, 2L]);
            writer.Close();
        }
        var parquet = ImageListReader.Read(pq);
        Assert.Equal([Path.Combine(dir, "p/1.png"), Path.Combine(dir, "p/2.png")], parquet.Entries.Select(e => e.Path));
        Assert.Equal(["first", ""], parquet.Entries.Select(e => e.Caption));
        Assert.Contains("holds Int64", Assert.Throws<ClipGenException>(() => ImageListReader.Read(pq, "n")).Message);
    }
}
