using System.Diagnostics;
using Engram.Core.Embeddings.Transformer;
using Microsoft.ML.OnnxRuntime;

namespace Engram.Benchmarks.Embeddings;

/// <summary>
/// What ONNX Runtime itself does with the model on this machine: one fixed, pre-padded batch (built once) fed
/// straight into session.Run again and again, no tokenizing, sorting, pooling or allocation around it.
/// </summary>
internal static class RawOrtCeiling
{
    public static double SentencesPerSecond(TransformerModel model, TransformerOptions options, IReadOnlyList<int[]> encoded, TimeSpan duration)
    {
        var dll = Path.Combine(options.ModelDirectory ?? ModelPackage.DefaultDirectory, model.AssemblyFile);
        var onnx = ModelPackage.ReadResource(dll, model.ResourcePrefix + "model.onnx", model.ModelSha256);
        using var sessionOptions = TransformerRuntime.CreateSessionOptions(options);
        using var session = new InferenceSession(onnx, sessionOptions);
        var width = encoded.Max(e => e.Length);
        var rows = Math.Clamp(options.MaxBatchTokens / width, 1, encoded.Count);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        var types = new long[rows * width];
        for (var r = 0; r < rows; r++)
        {
            for (var t = 0; t < encoded[r].Length; t++)
            {
                ids[(r * width) + t] = encoded[r][t];
                mask[(r * width) + t] = 1;
            }
        }
        long[] shape = [rows, width];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        var names = session.InputNames.ToArray();
        var inputs = names.Select(n => n.Contains("mask", StringComparison.Ordinal) ? maskValue : n.Contains("type", StringComparison.Ordinal) ? typesValue : idsValue).ToArray();
        string[] outputs = [session.OutputNames[0]];
        using var runOptions = new RunOptions();
        using (session.Run(runOptions, names, inputs, outputs))
        {
            // warm-up
        }
        var clock = Stopwatch.StartNew();
        var runs = 0;
        do
        {
            using var result = session.Run(runOptions, names, inputs, outputs);
            runs++;
        }
        while (clock.Elapsed < duration);
        return rows * runs / clock.Elapsed.TotalSeconds;
    }
}
