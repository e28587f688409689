using System.CommandLine;
using System.Text.Json;
using ClipGen.Applications;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen search</c>: ranks the images of an embedding index by cosine similarity to a text or an image.</summary>
sealed class SearchCommand : CliCommand
{
    readonly Option<string?> _index, _query, _image;
    readonly ModelOptionSet _model;
    readonly Option<int> _top;
    readonly Option<int?> _ef;
    readonly Option<bool> _json, _exact;

    public SearchCommand() : base("search", "rank the images of an index (from 'clipgen embed') by similarity to a text or an image")
    {
        _index = Required(CliOptions.Text("--index", "embeddings.safetensors", "the index written by clipgen embed"));
        _model = new ModelOptionSet(this);
        _query = Add(CliOptions.Text("--query", "TEXT", "search by text (or --image)"));
        _image = Add(CliOptions.Text("--image", "FILE", "search by image (or --query)"));
        _top = Add(CliOptions.Int("--top", 10, "how many hits", min: 1));
        _json = Add(CliOptions.Flag("--json", "print the hits as JSON"));
        _exact = Add(CliOptions.Flag("--exact", "scan every row, even when an HNSW graph is beside the index"));
        _ef = Add(CliOptions.OptionalInt("--ef", "HNSW candidates while searching (default from the graph's options)", min: 1));
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var indexPath = Value(args, _index);
        var model = _model.Read(args);
        var query = args.GetValue(_query);
        var image = args.GetValue(_image);
        int top = args.GetValue(_top);
        bool json = args.GetValue(_json);
        bool exact = args.GetValue(_exact);
        int? ef = args.GetValue(_ef);
        if (exact && ef is not null) throw new CliUsageException("--ef applies to the HNSW index; --exact scans every row");
        if ((query is null) == (image is null)) throw new CliUsageException("give exactly one of --query TEXT and --image FILE");
        if (query is not null && string.IsNullOrWhiteSpace(query)) throw new ClipGenException("--query is empty");

        var index = EmbeddingIndex.Load(indexPath);
        if (model.Model is not null) Check(index, indexPath, Modeling.ClipModelFactory.ResolveSpec(model.Model));
        if (image is not null && !File.Exists(image)) throw new ClipGenException($"{image}: file not found");

        using var pipeline = AppHelpers.Load(model, stderr);
        Check(index, indexPath, pipeline.Spec);
        var q = query is not null ? pipeline.EmbedTexts([query]) : pipeline.EmbedImages([image!]);
        var vector = q.Data;
        var graphPath = EmbeddingIndex.HnswPath(indexPath);
        IReadOnlyList<SearchHit> hits;
        if (!exact && File.Exists(graphPath))
        {
            // Approximate: the HNSW graph (memory-mapped) proposes candidates, the exact rows re-score them.
            using var graph = Indexing.HnswVectorIndex.Load(graphPath, view: true);
            if (graph.Count != index.Count || graph.Dimensions != index.Dimensions)
                throw new ClipGenException($"{graphPath} holds {graph.Count} rows of {graph.Dimensions} but {indexPath} {index.Count} of {index.Dimensions}: it was built from another index; delete it or search with --exact");
            graph.ExpansionSearch = Math.Max(ef ?? new Indexing.HnswOptions().ExpansionSearch, top);
            graph.Rerank = index.Exact;
            hits = index.ToHits(graph.Search(vector, top));
        }
        else
        {
            if (ef is not null) throw new ClipGenException($"--ef needs an HNSW index, and {graphPath} does not exist (build it with clipgen embed --hnsw)");
            hits = index.Search(vector, top);
        }

        if (json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartArray();
                foreach (var h in hits)
                {
                    w.WriteStartObject();
                    w.WriteString("image", h.File);
                    w.WriteNumber("score", h.Score);
                    w.WriteNumber("row", h.Row);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            int rank = 1;
            foreach (var h in hits) stdout.WriteLine($"{rank++,4}  {AppHelpers.Score(h.Score)}  {h.File}");
        }
        return 0;
    }

    static void Check(EmbeddingIndex index, string indexPath, Specs.ClipSpec spec)
    {
        if (index.Model.Length > 0 && index.Model != spec.Name)
            throw new ClipGenException($"{indexPath} holds embeddings of model '{index.Model}', not '{spec.Name}': search it with the model that made it");
        if (index.Dimensions != spec.EmbedDim)
            throw new ClipGenException($"{indexPath} holds {index.Dimensions}-dimensional embeddings but {spec.Name} makes {spec.EmbedDim}");
    }
}
