using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace ClipGen.Specs
{
    /// <summary>The result of resolving a set of spec files: the valid specs and every diagnostic.</summary>
    public sealed class SpecResolution
    {
        public SpecResolution(IReadOnlyList<ClipSpec> specs, IReadOnlyList<SpecDiagnostic> diagnostics, IReadOnlyDictionary<string, string> specFiles)
        {
            Specs = specs; Diagnostics = diagnostics; SpecFiles = specFiles;
        }

        /// <summary>Specs without errors, in file-path order.</summary>
        public IReadOnlyList<ClipSpec> Specs { get; }
        /// <summary>Every problem found, in file and line order.</summary>
        public IReadOnlyList<SpecDiagnostic> Diagnostics { get; }
        /// <summary>Spec name → the file that declares it.</summary>
        public IReadOnlyDictionary<string, string> SpecFiles { get; }
    }

    /// <summary>
    /// Resolves parsed spec files: applies <c>extends</c>, fills defaults, checks every field and the cross-field rules,
    /// and reports each problem at its YAML line and column.
    /// </summary>
    public static class SpecResolver
    {
        static readonly string[] TopKeys = { "name", "aliases", "extends", "class_name", "embed_dim", "activation", "init_logit_scale", "init_logit_bias", "loss", "custom_text", "vision", "text", "tokenizer", "preprocess", "pretrained" };
        static readonly string[] VisionKeys = { "image_size", "patch_size", "width", "layers", "head_width", "mlp_ratio", "activation", "pool", "class_token", "patch_bias", "ln_pre", "final_ln_after_pool", "layer_scale", "norm_eps", "proj", "timm_model_name" };
        /// <summary>Vision keys that a ModifiedResNet does not take.</summary>
        static readonly string[] VitOnlyKeys = { "mlp_ratio", "activation", "pool", "class_token", "patch_bias", "ln_pre", "final_ln_after_pool", "layer_scale", "proj", "timm_model_name" };
        static readonly string[] TextKeys = { "context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio", "pooling", "eos_id", "pad_id", "activation", "causal_mask", "proj", "proj_bias", "norm_eps", "layer_scale" };
        static readonly string[] TokenizerKeys = { "kind", "file", "clean", "strip_sep_token" };
        static readonly string[] PreprocessKeys = { "image_size", "mean", "std", "interpolation", "resize_mode", "fill_color" };
        static readonly string[] PretrainedKeys = { "url", "repo", "file", "revision", "sha256", "format", "tokenizer_file" };
        static readonly string[] NotInherited = { "name", "aliases", "extends", "class_name", "pretrained" };
        /// <summary>The <c>pretrained.&lt;source&gt;.format</c> values: how the downloaded file is laid out.</summary>
        public static readonly string[] PretrainedFormats = { "torchscript", "safetensors", "torch", "hf", "open_clip" };
        /// <summary>The Hugging Face Hub a <c>repo</c>/<c>file</c> entry downloads from.</summary>
        public const string HubEndpoint = "https://huggingface.co";
        /// <summary>Tokenizer kinds the runtime implements.</summary>
        public static readonly string[] TokenizerKinds = { "clip_bpe", "bytes", "sentencepiece", "wordpiece" };
        /// <summary>open_clip's text cleaning functions (<c>tokenizer.clean</c>), for the <c>sentencepiece</c> and <c>wordpiece</c> kinds.</summary>
        public static readonly string[] TokenizerCleans = { "canonicalize", "lower", "whitespace" };

        /// <summary>Resolves every document. <paramref name="library"/> holds extra specs that may be extended but are not returned (the built-ins, at run time).</summary>
        public static SpecResolution Resolve(IEnumerable<SpecDocument> documents, IEnumerable<SpecDocument>? library = null)
        {
            var docs = documents.OrderBy(d => d.FilePath, StringComparer.Ordinal).ToList();
            var diags = new List<SpecDiagnostic>();
            foreach (var d in docs) diags.AddRange(d.Diagnostics);

            // Index by name; library specs first so that user specs may shadow nothing silently (duplicates are errors only among 'documents').
            var byName = new Dictionary<string, SpecDocument>(StringComparer.Ordinal);
            var aliasOwner = new Dictionary<string, string>(StringComparer.Ordinal);
            if (library != null)
                foreach (var d in library)
                    if (d.Root != null && d.Name is string ln && !byName.ContainsKey(ln)) byName[ln] = d;
            var libraryNames = new HashSet<string>(byName.Keys, StringComparer.Ordinal);

            var own = new List<SpecDocument>();
            var seen = new Dictionary<string, SpecLocation>(StringComparer.Ordinal); // name or alias → where declared
            foreach (var d in docs)
            {
                if (d.Root == null) continue;
                var nameEntry = d.Root.Find("name");
                if (nameEntry == null)
                {
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.MissingField, "missing required field 'name' (the spec's open_clip name, e.g. ViT-B-32)", new SpecLocation(d.FilePath, 1, 1)));
                    continue;
                }
                if (!(nameEntry.Value is SpecScalar ns) || ns.Value.Length == 0)
                {
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.WrongType, "'name' must be a non-empty string", nameEntry.Value.Location));
                    continue;
                }
                if (seen.TryGetValue(ns.Value, out var first))
                {
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.DuplicateName, "spec name '" + ns.Value + "' is already declared at " + first + "; rename one of them", ns.Location));
                    continue;
                }
                seen[ns.Value] = ns.Location;
                byName[ns.Value] = d; // a user spec may replace a library spec of the same name
                libraryNames.Remove(ns.Value);
                own.Add(d);

                if (d.Root.Find("aliases") is SpecEntry ae && ae.Value is SpecSequence aseq)
                {
                    foreach (var item in aseq.Items)
                    {
                        if (!(item is SpecScalar a)) continue; // type error reported by the field check
                        if (seen.TryGetValue(a.Value, out var prev))
                            diags.Add(new SpecDiagnostic(SpecDiagnosticIds.DuplicateName, "alias '" + a.Value + "' is already used at " + prev + "; a name or alias must select one spec", a.Location));
                        else { seen[a.Value] = a.Location; aliasOwner[a.Value] = ns.Value; }
                    }
                }
            }
            // Aliases must not collide with names declared later in the order either.
            var specs = new List<ClipSpec>();
            var files = new Dictionary<string, string>(StringComparer.Ordinal);
            var classes = new Dictionary<string, (string Spec, SpecLocation At)>(StringComparer.Ordinal); // C# class → first spec using it
            foreach (var d in own)
            {
                var merged = Merge(d, byName, diags);
                if (merged == null) continue;
                var before = diags.Count;
                var spec = Build(merged, d.FilePath, diags);
                if (spec != null && diags.Count == before)
                {
                    // Two specs may not become one C# class (e.g. 'a-b' and 'a_b', or the same class_name).
                    var at = (d.Root!.Find("class_name") ?? d.Root.Find("name")!).Value.Location;
                    if (classes.TryGetValue(spec.ClassName, out var other))
                    {
                        diags.Add(new SpecDiagnostic(SpecDiagnosticIds.DuplicateName,
                            "class name '" + spec.ClassName + "' of spec '" + spec.Name + "' is already used by spec '" + other.Spec + "' at " + other.At + "; set a different 'class_name'", at));
                        continue;
                    }
                    classes[spec.ClassName] = (spec.Name, at);
                    specs.Add(spec);
                    files[spec.Name] = d.FilePath;
                }
            }
            var ordered = diags
                .Distinct()
                .OrderBy(x => x.Location.FilePath, StringComparer.Ordinal)
                .ThenBy(x => x.Location.Line).ThenBy(x => x.Location.Column).ToList();
            return new SpecResolution(specs, ordered, files);
        }

        /// <summary>Parses and resolves a single spec file at run time. Throws <see cref="SpecException"/> with every diagnostic.</summary>
        public static ClipSpec ResolveSingle(string path, string text, IEnumerable<SpecDocument>? library = null)
        {
            var doc = SpecDocument.Parse(path, text);
            var res = Resolve(new[] { doc }, library);
            var mine = res.Diagnostics.Where(x => x.Location.FilePath == path || !res.Specs.Any()).ToList();
            if (res.Specs.Count == 1 && mine.Count == 0) return res.Specs[0];
            throw new SpecException(mine.Count > 0 ? mine : res.Diagnostics);
        }

        // ---------- extends ----------

        static SpecMapping? Merge(SpecDocument doc, Dictionary<string, SpecDocument> byName, List<SpecDiagnostic> diags)
        {
            var chain = new List<SpecDocument> { doc };
            var current = doc;
            while (true)
            {
                var ext = current.Root!.Find("extends");
                if (ext == null) break;
                if (!(ext.Value is SpecScalar es) || es.Value.Length == 0)
                {
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.WrongType, "'extends' must be the name of another spec", ext.Value.Location));
                    return null;
                }
                if (!byName.TryGetValue(es.Value, out var baseDoc))
                {
                    var near = Nearest(es.Value, byName.Keys);
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.MissingBase,
                        "'extends: " + es.Value + "' names no known spec" + (near != null ? " (did you mean '" + near + "'?)" : "") + "; declare it or fix the name", es.Location));
                    return null;
                }
                if (chain.Contains(baseDoc))
                {
                    var names = string.Join(" -> ", chain.Select(c => c.Name).Concat(new[] { baseDoc.Name }));
                    var at = ((SpecScalar)doc.Root!.Find("extends")!.Value).Location;
                    diags.Add(new SpecDiagnostic(SpecDiagnosticIds.ExtendsCycle,
                        (baseDoc == doc ? "'extends' forms a cycle: " : "'extends' leads into a cycle: ") + names + "; break the chain so that a root spec extends nothing", at));
                    return null;
                }
                chain.Add(baseDoc);
                current = baseDoc;
            }
            // Apply from the root base to the child.
            SpecMapping result = chain[chain.Count - 1].Root!;
            for (int i = chain.Count - 2; i >= 0; i--) result = Overlay(result, chain[i].Root!, top: true);
            return result;
        }

        static SpecMapping Overlay(SpecMapping baseMap, SpecMapping child, bool top)
        {
            var entries = new List<SpecEntry>();
            foreach (var be in baseMap.Entries)
            {
                if (top && Array.IndexOf(NotInherited, be.Key) >= 0) continue;
                var ce = child.Find(be.Key);
                if (ce == null) entries.Add(be);
                else if (be.Value is SpecMapping bm && ce.Value is SpecMapping cm && be.Key != "pretrained") entries.Add(new SpecEntry(ce.Key, ce.KeyLocation, Overlay(bm, cm, top: false)));
                else entries.Add(ce);
            }
            foreach (var ce in child.Entries)
                if (entries.All(e => e.Key != ce.Key))
                    entries.Add(ce);
            return new SpecMapping(entries, child.Location);
        }

        // ---------- fields ----------

        sealed class Reader
        {
            readonly List<SpecDiagnostic> _diags;
            public Reader(List<SpecDiagnostic> diags) { _diags = diags; }
            public int Errors;

            public void Error(string id, string message, SpecLocation loc) { _diags.Add(new SpecDiagnostic(id, message, loc)); Errors++; }

            public void CheckKeys(SpecMapping m, string[] known, string section)
            {
                foreach (var e in m.Entries)
                {
                    if (Array.IndexOf(known, e.Key) >= 0) continue;
                    var near = Nearest(e.Key, known);
                    Error(SpecDiagnosticIds.UnknownKey, "unknown key '" + e.Key + "' in " + section + (near != null ? " (did you mean '" + near + "'?)" : "") + "; known keys: " + string.Join(", ", known), e.KeyLocation);
                }
            }

            public SpecMapping? Section(SpecMapping parent, string key, string where, bool required)
            {
                var e = parent.Find(key);
                if (e == null)
                {
                    if (required) Error(SpecDiagnosticIds.MissingField, "missing required section '" + key + "' in " + where + "; add a '" + key + ":' mapping", parent.Location.Line == 0 ? parent.Location : new SpecLocation(parent.Location.FilePath, parent.Location.Line, parent.Location.Column, 1, parent.Location.Offset));
                    return null;
                }
                if (e.Value is SpecMapping m) return m;
                Error(SpecDiagnosticIds.WrongType, "'" + key + "' must be a mapping of keys, not " + e.Value.KindName, e.Value.Location);
                return null;
            }

            public SpecScalar? Scalar(SpecMapping m, string key, string where, bool required)
            {
                var e = m.Find(key);
                if (e == null)
                {
                    if (required) Error(SpecDiagnosticIds.MissingField, "missing required field '" + key + "' in " + where + "; add '" + key + ": …' to it", m.Location);
                    return null;
                }
                if (e.Value is SpecScalar s) return s;
                Error(SpecDiagnosticIds.WrongType, "'" + key + "' must be a single value, not " + e.Value.KindName, e.Value.Location);
                return null;
            }

            public int Int(SpecMapping m, string key, string where, int? fallback, int min = 1)
            {
                var s = Scalar(m, key, where, fallback == null);
                if (s == null) return fallback ?? 0;
                return IntValue(s, key, min);
            }

            public int IntValue(SpecScalar s, string key, int min)
            {
                if (s.Quoted || !int.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
                {
                    Error(SpecDiagnosticIds.WrongType, "'" + key + "' must be a whole number, not '" + s.Value + "'", s.Location);
                    return 0;
                }
                if (v < min)
                {
                    Error(SpecDiagnosticIds.InvalidValue, "'" + key + "' must be at least " + min + ", not " + v, s.Location);
                    return 0;
                }
                var max = SpecDefaults.Maximum(key);
                if (v > max)
                {
                    Error(SpecDiagnosticIds.InvalidValue, "'" + key + "' must be at most " + max + ", not " + v + " (docs/limits.md says why)", s.Location);
                    return 0;
                }
                return v;
            }

            public double Number(SpecMapping m, string key, string where, double? fallback, double? minExclusive = null)
            {
                var s = Scalar(m, key, where, fallback == null);
                if (s == null) return fallback ?? 0;
                return NumberValue(s, key, minExclusive);
            }

            public double NumberValue(SpecScalar s, string key, double? minExclusive)
            {
                if (s.Quoted || !double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || double.IsNaN(v) || double.IsInfinity(v))
                {
                    Error(SpecDiagnosticIds.WrongType, "'" + key + "' must be a number, not '" + s.Value + "'", s.Location);
                    return 0;
                }
                if (minExclusive.HasValue && v <= minExclusive.Value)
                {
                    Error(SpecDiagnosticIds.InvalidValue, "'" + key + "' must be greater than " + minExclusive.Value.ToString(CultureInfo.InvariantCulture) + ", not " + s.Value, s.Location);
                    return 0;
                }
                return v;
            }

            public T Enum<T>(SpecMapping m, string key, string where, WordTable<T> words, T? fallback) where T : struct, System.Enum
            {
                var s = Scalar(m, key, where, fallback == null);
                if (s == null) return fallback ?? default;
                if (words.TryParse(s.Value, out var v)) return v;
                var near = Nearest(s.Value, words.Words);
                Error(SpecDiagnosticIds.InvalidValue, "'" + key + "' must be one of " + string.Join(", ", words.Words) + ", not '" + s.Value + "'" + (near != null ? " (did you mean '" + near + "'?)" : ""), s.Location);
                return fallback ?? default;
            }

            /// <summary>A number greater than <paramref name="minExclusive"/>, or absent / <c>none</c> (null).</summary>
            public double? OptionalNumber(SpecMapping m, string key, string where, double minExclusive)
            {
                var s = Scalar(m, key, where, false);
                if (s == null || (!s.Quoted && (s.Value == "none" || s.Value == "null" || s.Value == "~" || s.Value.Length == 0))) return null;
                return NumberValue(s, key, minExclusive);
            }

            public bool Bool(SpecMapping m, string key, string where, bool fallback)
            {
                var s = Scalar(m, key, where, false);
                if (s == null) return fallback;
                if (!s.Quoted && (s.Value == "true" || s.Value == "false")) return s.Value == "true";
                Error(SpecDiagnosticIds.WrongType, "'" + key + "' must be true or false, not '" + s.Value + "'", s.Location);
                return fallback;
            }

            public string Word(SpecMapping m, string key, string where, string[] allowed, string? fallback)
            {
                var s = Scalar(m, key, where, fallback == null);
                if (s == null) return fallback ?? allowed[0];
                if (Array.IndexOf(allowed, s.Value) >= 0) return s.Value;
                var near = Nearest(s.Value, allowed);
                Error(SpecDiagnosticIds.InvalidValue, "'" + key + "' must be one of " + string.Join(", ", allowed) + ", not '" + s.Value + "'" + (near != null ? " (did you mean '" + near + "'?)" : ""), s.Location);
                return allowed[0];
            }

            public double[] Numbers(SpecMapping m, string key, string where, int count, double? minExclusive)
            {
                var e = m.Find(key);
                if (e == null)
                {
                    Error(SpecDiagnosticIds.MissingField, "missing required field '" + key + "' in " + where + " (" + count + " numbers, RGB)", m.Location);
                    return new double[count];
                }
                if (!(e.Value is SpecSequence q) || q.Items.Count != count)
                {
                    Error(SpecDiagnosticIds.WrongType, "'" + key + "' must be a list of " + count + " numbers (RGB)", e.Value.Location);
                    return new double[count];
                }
                var r = new double[count];
                for (int i = 0; i < count; i++)
                {
                    if (q.Items[i] is SpecScalar s) r[i] = NumberValue(s, key, minExclusive);
                    else Error(SpecDiagnosticIds.WrongType, "'" + key + "' items must be numbers", q.Items[i].Location);
                }
                return r;
            }
        }

        static ClipSpec? Build(SpecMapping root, string filePath, List<SpecDiagnostic> diags)
        {
            var r = new Reader(diags);
            r.CheckKeys(root, TopKeys, "the spec");
            var name = ((SpecScalar)root.Find("name")!.Value).Value;
            var where = "spec '" + name + "'";

            var aliases = new List<string>();
            if (root.Find("aliases") is SpecEntry ae)
            {
                if (ae.Value is SpecSequence q)
                {
                    foreach (var item in q.Items)
                    {
                        if (item is SpecScalar s && s.Value.Length > 0) aliases.Add(s.Value);
                        else r.Error(SpecDiagnosticIds.WrongType, "'aliases' items must be non-empty strings", item.Location);
                    }
                }
                else r.Error(SpecDiagnosticIds.WrongType, "'aliases' must be a list of names, e.g. [ViT-B/32]", ae.Value.Location);
            }
            var extends = (root.Find("extends")?.Value as SpecScalar)?.Value ?? "";

            string className = DefaultClassName(name);
            if (r.Scalar(root, "class_name", where, false) is SpecScalar cn)
            {
                if (IsIdentifier(cn.Value)) className = cn.Value;
                else r.Error(SpecDiagnosticIds.InvalidValue, "'class_name' must be a C# identifier, not '" + cn.Value + "'", cn.Location);
            }

            var embedDim = r.Int(root, "embed_dim", where, null);
            var activation = r.Enum(root, "activation", where, SpecWords.Activation, null);
            var initLogitScale = r.Number(root, "init_logit_scale", where, null);
            var loss = r.Enum(root, "loss", where, SpecWords.Loss, SpecDefaults.Loss);
            var initLogitBias = r.Number(root, "init_logit_bias", where, SpecDefaults.InitLogitBias);
            var customText = r.Bool(root, "custom_text", where, false);

            // vision
            var vision = new VisionSpec();
            var vm = r.Section(root, "vision", where, true);
            if (vm != null)
            {
                r.CheckKeys(vm, VisionKeys, "'vision'");
                var vw = where + " vision";
                var imageSize = r.Int(vm, "image_size", vw, null);
                var width = r.Int(vm, "width", vw, null);
                var headWidth = r.Int(vm, "head_width", vw, SpecDefaults.VisionHeadWidth);
                var layers = new List<int>();
                var kind = VisionKind.VisionTransformer;
                var le = vm.Find("layers");
                if (le == null) r.Error(SpecDiagnosticIds.MissingField, "missing required field 'layers' in " + vw + " (one int for a ViT, four ints for a ModifiedResNet)", vm.Location);
                else if (le.Value is SpecScalar ls) layers.Add(r.IntValue(ls, "layers", 1));
                else if (le.Value is SpecSequence lq)
                {
                    // A list means a ResNet, even a wrong one: no cascade about a ViT's missing patch_size.
                    if (vm.Find("patch_size") == null) kind = VisionKind.ModifiedResNet;
                    if (lq.Items.Count != 4)
                        r.Error(SpecDiagnosticIds.BadVisionLayers, "vision 'layers' must be one int (ViT) or a list of four ints (ModifiedResNet stages), not a list of " + lq.Items.Count, lq.Location);
                    else
                    {
                        kind = VisionKind.ModifiedResNet;
                        foreach (var item in lq.Items)
                        {
                            if (item is SpecScalar s) layers.Add(r.IntValue(s, "layers", 1));
                            else r.Error(SpecDiagnosticIds.BadVisionLayers, "vision 'layers' items must be ints", item.Location);
                        }
                    }
                }
                else r.Error(SpecDiagnosticIds.BadVisionLayers, "vision 'layers' must be one int (ViT) or a list of four ints (ModifiedResNet), not a mapping", le.Value.Location);

                var vact = r.Enum(vm, "activation", vw, SpecWords.Activation, activation);
                var normEps = r.Number(vm, "norm_eps", vw, SpecDefaults.NormEps, 0);
                int patch = 0;
                double mlpRatio = SpecDefaults.MlpRatio;
                var pool = VisionPooling.ClassToken;
                bool classToken = true, patchBias = false, lnPre = true, lnAfterPool = false;
                double? layerScale = null;
                var proj = ProjectionKind.Linear;
                var timm = "";
                var pe = vm.Find("patch_size");
                if (kind == VisionKind.VisionTransformer)
                {
                    patch = r.Int(vm, "patch_size", vw, null);
                    mlpRatio = r.Number(vm, "mlp_ratio", vw, SpecDefaults.MlpRatio, 0);
                    classToken = r.Bool(vm, "class_token", vw, true);
                    pool = r.Enum(vm, "pool", vw, SpecWords.VisionPooling, classToken ? VisionPooling.ClassToken : VisionPooling.Mean);
                    patchBias = r.Bool(vm, "patch_bias", vw, false);
                    lnPre = r.Bool(vm, "ln_pre", vw, true);
                    lnAfterPool = r.Bool(vm, "final_ln_after_pool", vw, false);
                    layerScale = r.OptionalNumber(vm, "layer_scale", vw, 0);
                    proj = r.Enum(vm, "proj", vw, SpecWords.Projection, ProjectionKind.Linear);
                    timm = (r.Scalar(vm, "timm_model_name", vw, false)?.Value ?? "").Trim();
                    // The patch convolution drops a remainder (grid = image_size / patch_size, rounded down), as open_clip and timm do
                    // (ViT-SO400M-14-SigLIP-384: 384 / 14 → 27 patches a side); only a patch larger than the image is an error.
                    if (patch > 0 && imageSize > 0 && patch > imageSize)
                        r.Error(SpecDiagnosticIds.ImageSizeNotDivisible, "vision patch_size " + patch + " is larger than image_size " + imageSize + ", so the image has no whole patch; pick a patch_size of at most image_size", (pe?.Value ?? vm).Location);
                    if (width > 0 && headWidth > 0 && width % headWidth != 0)
                        r.Error(SpecDiagnosticIds.HeadsDoNotDivide, "vision width " + width + " is not divisible by head_width " + headWidth + "; heads = width / head_width must be whole", (vm.Find("head_width")?.Value ?? vm.Find("width")?.Value ?? vm).Location);
                    if (pool == VisionPooling.ClassToken && !classToken)
                        r.Error(SpecDiagnosticIds.InvalidValue, "vision 'pool: class_token' needs a class token: remove 'class_token: false' or pool with 'mean' or 'attention'", (vm.Find("pool")?.Value ?? vm.Find("class_token")!.Value).Location);
                    if (timm.Length > 0 && patchBias == lnPre)
                        r.Error(SpecDiagnosticIds.InvalidValue, "timm's ViT has a patch-embedding bias exactly when it has no ln_pre (its pre_norm), so a tower with timm_model_name needs "
                            + (lnPre ? "'patch_bias: false'" : "'patch_bias: true'") + " here", (vm.Find("patch_bias") ?? vm.Find("ln_pre") ?? vm.Find("timm_model_name")!).KeyLocation);
                    if (proj == ProjectionKind.None && width > 0 && embedDim > 0 && width != embedDim)
                        r.Error(SpecDiagnosticIds.InvalidValue, "vision 'proj: none' passes the tower's width " + width + " through as the embedding, so embed_dim must be " + width + ", not " + embedDim, vm.Find("proj")!.Value.Location);
                }
                else
                {
                    if (pe != null) r.Error(SpecDiagnosticIds.InvalidValue, "'patch_size' applies only to a ViT; a ModifiedResNet (four layers) has none: remove it", pe.KeyLocation);
                    foreach (var vitOnly in VitOnlyKeys)
                        if (vm.Find(vitOnly) is SpecEntry vo)
                            r.Error(SpecDiagnosticIds.InvalidValue, "'" + vitOnly + "' applies only to a ViT; a ModifiedResNet (four layers) has none: remove it", vo.KeyLocation);
                    if (imageSize > 0 && imageSize % 32 != 0)
                        r.Error(SpecDiagnosticIds.ImageSizeNotDivisible, "a ModifiedResNet's image_size must be divisible by 32 (its total stride), not " + imageSize, (vm.Find("image_size")?.Value ?? vm).Location);
                    if (width > 0 && headWidth > 0 && (width * 32) % headWidth != 0)
                        r.Error(SpecDiagnosticIds.HeadsDoNotDivide, "attention-pool width " + (width * 32) + " (width·32) is not divisible by head_width " + headWidth, (vm.Find("head_width")?.Value ?? vm.Find("width")?.Value ?? vm).Location);
                    if (width > 0 && width % 2 != 0)
                        r.Error(SpecDiagnosticIds.InvalidValue, "a ModifiedResNet's width must be even (its stem uses width/2 channels), not " + width, (vm.Find("width")?.Value ?? vm).Location);
                }
                if (kind == VisionKind.ModifiedResNet) vact = activation; // a ResNet has no MLP: its activation is the spec's
                vision = new VisionSpec
                {
                    Kind = kind, ImageSize = imageSize, PatchSize = patch, Width = width, Layers = layers.ToEquatableArray(),
                    HeadWidth = headWidth, MlpRatio = mlpRatio, Activation = vact, Pool = pool, ClassToken = classToken,
                    PatchBias = patchBias, LnPre = lnPre, FinalLnAfterPool = lnAfterPool, LayerScale = layerScale, NormEps = normEps,
                    Proj = proj, TimmModelName = timm,
                };
            }

            // text
            var text = new TextSpec();
            var tm = r.Section(root, "text", where, true);
            if (tm != null)
            {
                r.CheckKeys(tm, TextKeys, "'text'");
                var tw = where + " text";
                var ctx = r.Int(tm, "context_length", tw, null, 2);
                var vocab = r.Int(tm, "vocab_size", tw, null);
                var width = r.Int(tm, "width", tw, null);
                var heads = r.Int(tm, "heads", tw, null);
                var layers = r.Int(tm, "layers", tw, null);
                var mlp = r.Number(tm, "mlp_ratio", tw, SpecDefaults.MlpRatio, 0);
                var pooling = r.Enum(tm, "pooling", tw, SpecWords.TextPooling, SpecDefaults.TextPooling);
                // The end and pad ids default to the tokenizer kind's (CLIP's BPE, SentencePiece's </s>, BERT's [SEP]).
                var kindWord = (root.Find("tokenizer")?.Value as SpecMapping)?.Find("kind")?.Value is SpecScalar ks ? ks.Value : "";
                var eos = r.Int(tm, "eos_id", tw, SpecDefaults.EosIdOf(kindWord), 0);
                var pad = r.Int(tm, "pad_id", tw, SpecDefaults.PadId, 0);
                var tact = r.Enum(tm, "activation", tw, SpecWords.Activation, activation);
                var causal = r.Bool(tm, "causal_mask", tw, true);
                var proj = r.Enum(tm, "proj", tw, SpecWords.Projection, ProjectionKind.Linear);
                var projBias = r.Bool(tm, "proj_bias", tw, false);
                var normEps = r.Number(tm, "norm_eps", tw, SpecDefaults.NormEps, 0);
                var layerScale = r.OptionalNumber(tm, "layer_scale", tw, 0);
                if (width > 0 && heads > 0 && width % heads != 0)
                    r.Error(SpecDiagnosticIds.HeadsDoNotDivide, "text width " + width + " is not divisible by heads " + heads, (tm.Find("heads")?.Value ?? tm).Location);
                if (vocab > 0 && eos >= vocab && tm.Find("eos_id") != null)
                    r.Error(SpecDiagnosticIds.InvalidValue, "text eos_id " + eos + " is outside the vocabulary (vocab_size " + vocab + ")", tm.Find("eos_id")!.Value.Location);
                if (vocab > 0 && pad >= vocab && tm.Find("pad_id") != null)
                    r.Error(SpecDiagnosticIds.InvalidValue, "text pad_id " + pad + " is outside the vocabulary (vocab_size " + vocab + ")", tm.Find("pad_id")!.Value.Location);
                if (proj == ProjectionKind.None && projBias)
                    r.Error(SpecDiagnosticIds.InvalidValue, "text 'proj_bias: true' needs a projection: remove it or set 'proj: linear'", tm.Find("proj_bias")!.KeyLocation);
                if (proj == ProjectionKind.None && width > 0 && embedDim > 0 && width != embedDim)
                    r.Error(SpecDiagnosticIds.InvalidValue, "text 'proj: none' passes the tower's width " + width + " through as the embedding, so embed_dim must be " + width + ", not " + embedDim, tm.Find("proj")!.Value.Location);
                text = new TextSpec
                {
                    ContextLength = ctx, VocabSize = vocab, Width = width, Heads = heads, Layers = layers, MlpRatio = mlp,
                    Pooling = pooling, EosId = eos, PadId = pad, Activation = tact, CausalMask = causal, Proj = proj, ProjBias = projBias,
                    NormEps = normEps, LayerScale = layerScale,
                };
            }

            // tokenizer
            var tokenizer = new TokenizerSpec();
            var tkm = r.Section(root, "tokenizer", where, true);
            if (tkm != null)
            {
                r.CheckKeys(tkm, TokenizerKeys, "'tokenizer'");
                var tkw = where + " tokenizer";
                var kind = r.Word(tkm, "kind", tkw, TokenizerKinds, null);
                var hf = kind == "sentencepiece" || kind == "wordpiece";
                var fileNode = r.Scalar(tkm, "file", tkw, false);
                var file = fileNode?.Value ?? "";
                if (fileNode != null && (kind == "bytes" || fileNode.Value.Length == 0 || fileNode.Value.IndexOfAny(new[] { '/', '\\' }) >= 0))
                    r.Error(SpecDiagnosticIds.InvalidValue, kind == "bytes"
                        ? "the 'bytes' tokenizer reads no file: remove 'file'"
                        : "tokenizer 'file' is a file name (looked for beside the weights), not '" + fileNode.Value + "'", fileNode.Location);
                if (hf && fileNode == null)
                    r.Error(SpecDiagnosticIds.MissingField, "missing required field 'file' in " + tkw + ": the " + kind + " tokenizer needs its vocabulary file's name (e.g. " + (kind == "wordpiece" ? "vocab.txt" : "spiece.model") + ")", tkm.Location);
                var clean = "";
                if (tkm.Find("clean") is SpecEntry ce)
                {
                    if (hf) clean = r.Word(tkm, "clean", tkw, TokenizerCleans, null);
                    else r.Error(SpecDiagnosticIds.InvalidValue, "'clean' applies to the sentencepiece and wordpiece tokenizers; " + kind + " always cleans as " + (kind == "clip_bpe" ? "OpenAI does" : "it is written") + ": remove it", ce.KeyLocation);
                }
                else if (hf) clean = SpecDefaults.TokenizerClean;
                var strip = r.Bool(tkm, "strip_sep_token", tkw, false);
                if (strip && kind != "wordpiece")
                    r.Error(SpecDiagnosticIds.InvalidValue, "'strip_sep_token' applies only to the wordpiece tokenizer", tkm.Find("strip_sep_token")!.KeyLocation);
                tokenizer = new TokenizerSpec { Kind = kind, File = file, Clean = clean, StripSepToken = strip };
            }

            // preprocess
            var pre = new PreprocessSpec();
            var pm = r.Section(root, "preprocess", where, true);
            if (pm != null)
            {
                r.CheckKeys(pm, PreprocessKeys, "'preprocess'");
                var pw = where + " preprocess";
                pre = new PreprocessSpec
                {
                    ImageSize = r.Int(pm, "image_size", pw, vision.ImageSize > 0 ? vision.ImageSize : 1),
                    Mean = r.Numbers(pm, "mean", pw, 3, null).ToEquatableArray(),
                    Std = r.Numbers(pm, "std", pw, 3, 0).ToEquatableArray(),
                    Interpolation = r.Enum<InterpolationKind>(pm, "interpolation", pw, SpecWords.Interpolation, null),
                    ResizeMode = r.Enum<ResizeModeKind>(pm, "resize_mode", pw, SpecWords.ResizeMode, null),
                    FillColor = r.Int(pm, "fill_color", pw, SpecDefaults.FillColor, 0),
                };
                if (pre.FillColor > 255 && pm.Find("fill_color") is SpecEntry fe)
                    r.Error(SpecDiagnosticIds.InvalidValue, "'fill_color' is an 8-bit grey level 0..255, not " + pre.FillColor, fe.Value.Location);
            }

            // pretrained
            var pretrained = new List<PretrainedSpec>();
            if (root.Find("pretrained") is SpecEntry pre2)
            {
                if (pre2.Value is SpecMapping srcs)
                {
                    foreach (var src in srcs.Entries)
                    {
                        if (!(src.Value is SpecMapping sm)) { r.Error(SpecDiagnosticIds.WrongType, "pretrained '" + src.Key + "' must be a mapping with url (or repo and file) and sha256", src.Value.Location); continue; }
                        var section = "pretrained '" + src.Key + "'";
                        r.CheckKeys(sm, PretrainedKeys, section);
                        var entry = ReadPretrained(r, sm, src.Key, section);
                        if (entry != null) pretrained.Add(entry);
                    }
                }
                else r.Error(SpecDiagnosticIds.WrongType, "'pretrained' must map a source name (openai, hf, …) to {url, sha256}", pre2.Value.Location);
            }

            if (r.Errors > 0) return null;
            return new ClipSpec
            {
                Name = name, Aliases = aliases.ToEquatableArray(), Extends = extends, ClassName = className,
                EmbedDim = embedDim, InitLogitScale = initLogitScale, InitLogitBias = initLogitBias,
                Loss = loss, CustomText = customText,
                Vision = vision, Text = text, Tokenizer = tokenizer, Preprocess = pre, Pretrained = pretrained.ToEquatableArray(),
            };
        }

        /// <summary>
        /// One <c>pretrained.&lt;source&gt;</c> entry: either a direct <c>url</c>, or a Hugging Face Hub <c>repo</c> + <c>file</c>
        /// (+ <c>revision</c>, default <c>main</c>) whose URL is <c>https://huggingface.co/&lt;repo&gt;/resolve/&lt;revision&gt;/&lt;file&gt;</c>.
        /// </summary>
        static PretrainedSpec? ReadPretrained(Reader r, SpecMapping sm, string source, string where)
        {
            int errors = r.Errors;
            var urlNode = r.Scalar(sm, "url", where, false);
            var repoNode = r.Scalar(sm, "repo", where, false);
            var fileNode = r.Scalar(sm, "file", where, false);
            var revisionNode = r.Scalar(sm, "revision", where, false);
            var sha = r.Scalar(sm, "sha256", where, false);
            var format = r.Word(sm, "format", where, PretrainedFormats, "safetensors");
            var tokenizerFile = r.Scalar(sm, "tokenizer_file", where, false);
            if (tokenizerFile != null && (repoNode == null || !IsHubPath(tokenizerFile.Value)))
                r.Error(SpecDiagnosticIds.InvalidValue, repoNode == null
                    ? where + ": 'tokenizer_file' names a file in the Hugging Face Hub repository ('repo'), so it needs 'repo'"
                    : where + " tokenizer_file must be a relative path in the repository, not '" + tokenizerFile.Value + "'", tokenizerFile.Location);
            if (sha != null && !(sha.Value.Length == 64 && sha.Value.All(Uri.IsHexDigit)))
                r.Error(SpecDiagnosticIds.InvalidValue, where + " sha256 must be 64 hex digits", sha.Location);

            string url = "", repo = "", file = "", revision = "";
            if (urlNode != null && repoNode != null)
                r.Error(SpecDiagnosticIds.InvalidValue, where + " has both 'url' and 'repo'; keep 'url' for a direct download or 'repo' + 'file' for a Hugging Face Hub file", repoNode.Location);
            else if (urlNode != null)
            {
                url = urlNode.Value;
                if (!(url.StartsWith("https://", StringComparison.Ordinal) || url.StartsWith("http://", StringComparison.Ordinal)))
                    r.Error(SpecDiagnosticIds.InvalidValue, where + " url must start with https://", urlNode.Location);
                foreach (var hubOnly in new[] { fileNode, revisionNode })
                    if (hubOnly != null)
                        r.Error(SpecDiagnosticIds.InvalidValue, where + ": 'file' and 'revision' belong to a Hugging Face Hub entry ('repo'); with 'url', the URL names the file and revision", hubOnly.Location);
            }
            else if (repoNode != null)
            {
                repo = repoNode.Value;
                var parts = repo.Split('/');
                if (parts.Length != 2 || !parts.All(IsHubName))
                    r.Error(SpecDiagnosticIds.InvalidValue, where + " repo must be '<owner>/<name>' (letters, digits, '-', '_', '.'), e.g. openai/clip-vit-base-patch32, not '" + repo + "'", repoNode.Location);
                if (fileNode == null)
                    r.Error(SpecDiagnosticIds.MissingField, "missing required field 'file' in " + where + "; name the file in the repository, e.g. 'file: model.safetensors'", repoNode.Location);
                else
                {
                    file = fileNode.Value;
                    if (!IsHubPath(file))
                        r.Error(SpecDiagnosticIds.InvalidValue, where + " file must be a relative path in the repository (letters, digits, '-', '_', '.', '/'; no '..'), not '" + file + "'", fileNode.Location);
                }
                revision = revisionNode?.Value ?? "main";
                if (revisionNode != null && !IsHubPath(revision))
                    r.Error(SpecDiagnosticIds.InvalidValue, where + " revision must be a branch, tag or commit hash (letters, digits, '-', '_', '.', '/'), not '" + revision + "'", revisionNode.Location);
            }
            else
            {
                var missingAt = fileNode?.Location ?? revisionNode?.Location ?? sm.Location;
                r.Error(SpecDiagnosticIds.MissingField, where + " needs 'url' (a direct download) or 'repo' and 'file' (a Hugging Face Hub file)", missingAt);
            }
            if (r.Errors > errors) return null;
            if (repo.Length > 0) url = HubUrl(repo, revision, file);
            return new PretrainedSpec
            {
                Source = source, Url = url, Repo = repo, File = file, Revision = revision,
                Sha256 = (sha?.Value ?? "").ToLowerInvariant(), Format = format, TokenizerFile = tokenizerFile?.Value ?? "",
            };
        }

        /// <summary>The Hub's resolve URL of a file: <c>https://huggingface.co/&lt;repo&gt;/resolve/&lt;revision&gt;/&lt;file&gt;</c> (revision and path segments escaped).</summary>
        public static string HubUrl(string repo, string revision, string file) =>
            HubEndpoint + "/" + repo + "/resolve/" + Uri.EscapeDataString(revision) + "/" + string.Join("/", file.Split('/').Select(Uri.EscapeDataString));

        static bool IsHubName(string s) =>
            s.Length > 0 && s.Length <= 96 && s.All(c => (c < 128 && char.IsLetterOrDigit(c)) || c == '-' || c == '_' || c == '.') && s != "." && s != ".." && !s.StartsWith(".", StringComparison.Ordinal);

        static bool IsHubPath(string s) =>
            s.Length > 0 && !s.StartsWith("/", StringComparison.Ordinal) && s.Split('/').All(IsHubName);

        /// <summary>The default C# class name of a spec: every character that is not a letter or digit becomes '_'.</summary>
        public static string DefaultClassName(string name)
        {
            var sb = new StringBuilder();
            foreach (var c in name) sb.Append(char.IsLetterOrDigit(c) && c < 128 ? c : '_');
            if (sb.Length == 0 || char.IsDigit(sb[0])) sb.Insert(0, '_');
            return sb.ToString();
        }

        static bool IsIdentifier(string s) =>
            s.Length > 0 && (char.IsLetter(s[0]) || s[0] == '_') && s.All(c => (char.IsLetterOrDigit(c) && c < 128) || c == '_');

        /// <summary>The closest candidate within an edit distance of a third of the word (for "did you mean").</summary>
        public static string? Nearest(string word, IEnumerable<string> candidates)
        {
            string? best = null;
            int bestD = int.MaxValue;
            foreach (var c in candidates)
            {
                var d = Distance(word.ToLowerInvariant(), c.ToLowerInvariant());
                if (d < bestD) { bestD = d; best = c; }
            }
            return best != null && bestD <= Math.Max(2, word.Length / 3) ? best : null;
        }

        static int Distance(string a, string b)
        {
            var d = new int[a.Length + 1, b.Length + 1];
            for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
            for (int j = 0; j <= b.Length; j++) d[0, j] = j;
            for (int i = 1; i <= a.Length; i++)
                for (int j = 1; j <= b.Length; j++)
                    d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            return d[a.Length, b.Length];
        }
    }
}
