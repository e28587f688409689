using System;
using System.Collections.Generic;
using System.Linq;

namespace ClipGen.Specs
{
    /// <summary>Whether a state_dict entry is a trainable parameter or a buffer (BatchNorm statistics).</summary>
    public enum KeyKind { Parameter, Buffer }

    /// <summary>One state_dict entry of a model: PyTorch key, shape and dtype.</summary>
    public sealed record KeyEntry(string Key, EquatableArray<long> Shape, string DType, KeyKind Kind)
    {
        public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
        public override string ToString() => Key + " [" + string.Join(",", Shape) + "] " + DType;
    }

    /// <summary>
    /// The planner's key table: every state_dict key of a spec's model, in PyTorch's state_dict order, with its
    /// shape and dtype. These keys are OpenAI's (and open_clip's) — the contract with published checkpoints.
    /// </summary>
    public static class KeyTable
    {
        public static IReadOnlyList<KeyEntry> Build(ClipSpec spec)
        {
            var t = new List<KeyEntry>();
            long E = spec.EmbedDim, tw = spec.Text.Width;
            // CLIP's own parameters first (PyTorch saves a module's own parameters before its children's).
            P(t, "positional_embedding", spec.Text.ContextLength, tw);
            P(t, "text_projection", tw, E);
            P(t, "logit_scale");
            if (spec.Loss == LossKind.SigLip) P(t, "logit_bias");
            if (spec.Vision.Kind == VisionKind.VisionTransformer) Vit(t, spec);
            else ResNet(t, spec);
            Transformer(t, "transformer", spec.Text.Layers, tw, spec.TextMlpWidth);
            P(t, "token_embedding.weight", spec.Text.VocabSize, tw);
            P(t, "ln_final.weight", tw);
            P(t, "ln_final.bias", tw);
            return t;
        }

        /// <summary>Number of trainable parameters (buffers excluded), as <c>sum(p.numel() for p in model.parameters())</c>.</summary>
        public static long ParameterCount(ClipSpec spec) => Build(spec).Where(k => k.Kind == KeyKind.Parameter).Sum(k => k.Elements);

        static void Vit(List<KeyEntry> t, ClipSpec s)
        {
            long w = s.Vision.Width, p = s.Vision.PatchSize, g = s.VisionGrid;
            P(t, "visual.class_embedding", w);
            P(t, "visual.positional_embedding", g * g + 1, w);
            P(t, "visual.proj", w, s.EmbedDim);
            P(t, "visual.conv1.weight", w, 3, p, p);
            P(t, "visual.ln_pre.weight", w);
            P(t, "visual.ln_pre.bias", w);
            Transformer(t, "visual.transformer", s.Vision.Layers[0], w, s.VisionMlpWidth);
            P(t, "visual.ln_post.weight", w);
            P(t, "visual.ln_post.bias", w);
        }

        static void ResNet(List<KeyEntry> t, ClipSpec s)
        {
            long w = s.Vision.Width;
            Conv(t, "visual.conv1", w / 2, 3, 3); Bn(t, "visual.bn1", w / 2);
            Conv(t, "visual.conv2", w / 2, w / 2, 3); Bn(t, "visual.bn2", w / 2);
            Conv(t, "visual.conv3", w, w / 2, 3); Bn(t, "visual.bn3", w);
            long inplanes = w;
            for (int stage = 0; stage < 4; stage++)
            {
                long planes = w << stage;
                int stride = stage == 0 ? 1 : 2;
                for (int b = 0; b < s.Vision.Layers[stage]; b++)
                {
                    var pre = "visual.layer" + (stage + 1) + "." + b;
                    int st = b == 0 ? stride : 1;
                    Conv(t, pre + ".conv1", planes, inplanes, 1); Bn(t, pre + ".bn1", planes);
                    Conv(t, pre + ".conv2", planes, planes, 3); Bn(t, pre + ".bn2", planes);
                    Conv(t, pre + ".conv3", planes * 4, planes, 1); Bn(t, pre + ".bn3", planes * 4);
                    if (st > 1 || inplanes != planes * 4)
                    {
                        Conv(t, pre + ".downsample.0", planes * 4, inplanes, 1);
                        Bn(t, pre + ".downsample.1", planes * 4);
                    }
                    inplanes = planes * 4;
                }
            }
            long embed = w * 32, sp = s.VisionGrid;
            P(t, "visual.attnpool.positional_embedding", sp * sp + 1, embed);
            foreach (var n in new[] { "k_proj", "q_proj", "v_proj" })
            {
                P(t, "visual.attnpool." + n + ".weight", embed, embed);
                P(t, "visual.attnpool." + n + ".bias", embed);
            }
            P(t, "visual.attnpool.c_proj.weight", s.EmbedDim, embed);
            P(t, "visual.attnpool.c_proj.bias", s.EmbedDim);
        }

        static void Transformer(List<KeyEntry> t, string prefix, int layers, long w, long mlp)
        {
            for (int i = 0; i < layers; i++)
            {
                var b = prefix + ".resblocks." + i;
                P(t, b + ".attn.in_proj_weight", 3 * w, w);
                P(t, b + ".attn.in_proj_bias", 3 * w);
                P(t, b + ".attn.out_proj.weight", w, w);
                P(t, b + ".attn.out_proj.bias", w);
                P(t, b + ".ln_1.weight", w);
                P(t, b + ".ln_1.bias", w);
                P(t, b + ".mlp.c_fc.weight", mlp, w);
                P(t, b + ".mlp.c_fc.bias", mlp);
                P(t, b + ".mlp.c_proj.weight", w, mlp);
                P(t, b + ".mlp.c_proj.bias", w);
                P(t, b + ".ln_2.weight", w);
                P(t, b + ".ln_2.bias", w);
            }
        }

        static void Conv(List<KeyEntry> t, string name, long cout, long cin, long k) => P(t, name + ".weight", cout, cin, k, k);

        static void Bn(List<KeyEntry> t, string name, long c)
        {
            P(t, name + ".weight", c);
            P(t, name + ".bias", c);
            t.Add(new KeyEntry(name + ".running_mean", new[] { c }.ToEquatableArray(), "float32", KeyKind.Buffer));
            t.Add(new KeyEntry(name + ".running_var", new[] { c }.ToEquatableArray(), "float32", KeyKind.Buffer));
            t.Add(new KeyEntry(name + ".num_batches_tracked", EquatableArray<long>.Empty, "int64", KeyKind.Buffer));
        }

        static void P(List<KeyEntry> t, string key, params long[] shape) =>
            t.Add(new KeyEntry(key, shape.ToEquatableArray(), "float32", KeyKind.Parameter));
    }
}
