// Checks of what forward computes: causality, pages, GQA head mapping, sliding window, soft cap,
// scale, KV sharing and the numbers themselves.  Inputs are keyed by (sequence, position, head,
// coordinate), so one token gets the same query, key and value whatever batch it travels in; each
// failure names the semantics broken and the first sequence, token and head where it showed.
#include <atb/mock_host/attention_oracle.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "checks.hpp"

namespace atb::mock_host {
namespace {

std::string str(int64_t value) { return std::to_string(value); }

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A standard normal value keyed by its coordinates (Box-Muller on two hashed uniforms).
float keyed_normal(uint64_t seed, int64_t sequence, int64_t position, int kind, int head, int c) {
  uint64_t h = mix(seed ^ mix(uint64_t(sequence) * 0x100000001b3ull ^ mix(uint64_t(position))));
  h = mix(h ^ (uint64_t(kind) << 40) ^ (uint64_t(head) << 20) ^ uint64_t(c));
  const double u1 = (double(h >> 11) + 1.0) / 9007199254740993.0, u2 = double(mix(h) >> 11) / 9007199254740992.0;
  return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

enum Kind { kQuery = 0, kKey = 1, kValue = 2 };

// Where token t of a step sits: its sequence (index in the batch and host id) and position.
struct Place {
  int seq;
  int64_t sequence_id;
  int64_t position;
};
Place place_of(const host::StepBatch& b, int t) {
  int s = 0;
  while (s + 1 < b.num_seqs && b.query_start_loc[size_t(s) + 1] <= t) ++s;
  const int64_t q_len = b.query_start_loc[size_t(s) + 1] - b.query_start_loc[size_t(s)];
  return {s, b.sequence_ids[size_t(s)], b.seq_lens[size_t(s)] - q_len + (t - b.query_start_loc[size_t(s)])};
}

// Fills a prepared step's queries, keys and values from (sequence, position, head, coordinate).
using Filler = std::function<float(const Place&, int kind, int head, int c)>;
void fill(PreparedStep& step, const Filler& value_of) {
  for (int t = 0; t < step.batch.num_tokens; ++t) {
    const Place at = place_of(step.batch, t);
    for (auto [tensor, kind] :
         {std::pair{&*step.query, kQuery}, std::pair{&*step.key, kKey}, std::pair{&*step.value, kValue}})
      for (int h = 0; h < tensor->size(1); ++h)
        for (int c = 0; c < tensor->size(2); ++c) tensor->set(t, h, c, value_of(at, kind, h, c));
  }
}

Filler keyed(uint64_t seed) {
  return [seed](const Place& at, int kind, int h, int c) {
    return keyed_normal(seed, at.sequence_id, at.position, kind, h, c);
  };
}

float output_at(const PreparedStep& step, int t, int h, int c) { return step.output.get(kGuardRows + t, h, c); }

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The first head of token t whose output differs between two steps, or -1.
int first_differing_head(const PreparedStep& a, int ta, const PreparedStep& b, int tb) {
  for (int h = 0; h < a.output.size(1); ++h)
    for (int c = 0; c < a.output.size(2); ++c)
      if (!same_bits(output_at(a, ta, h, c), output_at(b, tb, h, c))) return h;
  return -1;
}

std::string where(const Place& at, int t, int h) {
  return "sequence " + str(at.sequence_id) + ", token " + str(t) + " (position " + str(at.position) + "), head " +
         str(h);
}

// Runs `script` (all but its last step) on a new engine with keyed inputs, then prepares the last
// step with keyed inputs, lets `edit` change them, and runs it.
Expected<std::unique_ptr<PreparedStep>> run_edited(const host::Plugin& plugin, const EngineShape& shape,
                                                   const std::vector<ScriptStep>& script, const Filler& inputs,
                                                   const std::function<void(PreparedStep&)>& edit) {
  auto engine = MockEngine::create(plugin, shape, "{}");
  if (!engine) return engine.error();
  MockEngine& e = *engine;
  for (size_t i = 0; i + 1 < script.size(); ++i) {
    auto step = e.prepare(script[i]);
    if (!step) return step.error();
    fill(**step, inputs);
    ATB_RETURN_IF_ERROR(e.run(**step));
  }
  auto last = e.prepare(script.back());
  if (!last) return last.error();
  fill(**last, inputs);
  if (edit) edit(**last);
  ATB_RETURN_IF_ERROR(e.run(**last));
  return last;
}

// Sets K and V of the last step's tokens whose position satisfies `which` to other values.
std::function<void(PreparedStep&)> change_kv(std::function<bool(int64_t)> which) {
  return [which](PreparedStep& step) {
    for (int t = 0; t < step.batch.num_tokens; ++t) {
      const Place at = place_of(step.batch, t);
      if (!which(at.position)) continue;
      for (auto [tensor, kind] : {std::pair{&*step.key, kKey}, std::pair{&*step.value, kValue}})
        for (int h = 0; h < tensor->size(1); ++h)
          for (int c = 0; c < tensor->size(2); ++c)
            tensor->set(t, h, c, keyed_normal(99, at.sequence_id, at.position, kind, h, c));
    }
  };
}

// The outputs at positions where `same` holds must be bit-identical between base and edited, and
// the output at `must_change` must differ.  Returns the failure message, or "".
std::string compare_positions(const PreparedStep& base, const PreparedStep& edited,
                              const std::function<bool(int64_t)>& same, int64_t must_change,
                              const std::string& semantics, const std::string& edit_words) {
  for (int t = 0; t < base.batch.num_tokens; ++t) {
    const Place at = place_of(base.batch, t);
    if (same(at.position)) {
      if (int h = first_differing_head(base, t, edited, t); h >= 0)
        return semantics + ": " + edit_words + " changed the output of " + where(at, t, h);
    } else if (at.position == must_change && first_differing_head(base, t, edited, t) < 0) {
      return semantics + ": " + edit_words + " left the output at position " + str(must_change) +
             " unchanged, though it must see that position (sequence " + str(at.sequence_id) + ", token " + str(t) +
             ")";
    }
  }
  return "";
}

}  // namespace

CheckResult check_causality(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "causality";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);
  struct Case {
    const char* what;
    std::vector<ScriptStep> script;
    int64_t p;
  };
  const std::vector<Case> cases = {{"prefill", {{{}, {{0, 40}}}}, 17},
                                   {"chunked prefill", {{{}, {{0, 24}}}, {{}, {{0, 24}}}}, 33}};
  for (const Case& c : cases) {
    const int64_t p = c.p;
    auto base = run_edited(*plugin, shape, c.script, keyed(1), nullptr);
    auto later = run_edited(*plugin, shape, c.script, keyed(1), change_kv([p](int64_t q) { return q > p; }));
    auto at = run_edited(*plugin, shape, c.script, keyed(1), change_kv([p](int64_t q) { return q == p; }));
    for (auto* run : {&base, &later, &at})
      if (!*run) return {name, false, std::string(c.what) + ": " + run->error().message()};
    std::string broken = compare_positions(
        **base, **later, [p](int64_t q) { return q <= p; }, -1, "causality",
        std::string("in a ") + c.what + ", changing keys and values after position " + str(p));
    if (broken.empty())
      broken = compare_positions(
          **base, **at, [](int64_t) { return false; }, p, "causality",
          std::string("in a ") + c.what + ", changing the key and value at position " + str(p));
    if (!broken.empty()) return {name, false, broken};
  }
  return {name, true,
          "prefill and chunked prefill " + device_words(options) +
              ": outputs at positions <= p bit-identical when later keys and values change, and the output "
              "at p changes with its own"};
}

CheckResult check_sliding_window(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "sliding_window";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  if (!(plugin->info().capability_flags & ATB_CAP_SLIDING_WINDOW))
    return {name, true, "ATB_CAP_SLIDING_WINDOW is not advertised (nothing to check)"};
  EngineShape shape = shape_for(plugin->info(), options);
  constexpr int kWindow = 8;
  constexpr int64_t kP = 25;  // sees positions 18 .. 25
  shape.sliding_window = kWindow;
  const std::vector<ScriptStep> script = {{{}, {{0, 32}}}};
  auto base = run_edited(*plugin, shape, script, keyed(2), nullptr);
  auto outside =
      run_edited(*plugin, shape, script, keyed(2), change_kv([](int64_t q) { return q < kP - kWindow + 1; }));
  auto inside =
      run_edited(*plugin, shape, script, keyed(2), change_kv([](int64_t q) { return q == kP - kWindow + 1; }));
  for (auto* run : {&base, &outside, &inside})
    if (!*run) return {name, false, run->error().message()};
  std::string broken = compare_positions(
      **base, **outside, [](int64_t q) { return q >= kP; }, -1, "sliding window",
      "with window " + str(kWindow) + ", changing keys and values before position " + str(kP - kWindow + 1));
  if (broken.empty())
    broken = compare_positions(
        **base, **inside, [](int64_t) { return false; }, kP, "sliding window",
        "with window " + str(kWindow) + ", changing the key and value at position " + str(kP - kWindow + 1));
  if (!broken.empty()) return {name, false, broken};
  return {name, true,
          "window " + str(kWindow) + " " + device_words(options) +
              ": positions >= 25 unchanged by keys before 18, position 25 changed by key 18"};
}

namespace {

// The needle probe: 16 positions of small random keys, one (position 5) aligned with the last
// token's query by a wide logit margin (~20 at the default scale); returns, per query head, the
// cosine between the last token's output and the needle's value, or an error.
Expected<std::vector<double>> needle_cosines(const host::Plugin& plugin, const EngineShape& shape) {
  constexpr int64_t kNeedle = 5, kLast = 15;
  const int group = shape.num_query_heads / shape.num_kv_heads;
  const auto direction = [](int kv_head, int c) { return keyed_normal(7, 0, 0, 9, kv_head, c) / std::sqrt(128.0f); };
  const Filler inputs = [&](const Place& at, int kind, int h, int c) {
    const int kv_head = kind == kQuery ? h / group : h;
    if (kind == kQuery)
      return at.position == kLast ? 15.0f * direction(kv_head, c) * std::sqrt(128.0f / shape.head_size) : 0.1f;
    if (kind == kKey)
      return at.position == kNeedle ? 15.0f * direction(kv_head, c) * std::sqrt(128.0f / shape.head_size)
                                    : 0.1f * keyed_normal(3, 0, at.position, kind, h, c);
    return keyed_normal(3, 0, at.position, kind, h, c);
  };
  auto step = run_edited(plugin, shape, {{{}, {{0, int32_t(kLast + 1)}}}}, inputs, nullptr);
  if (!step) return step.error();
  std::vector<double> cosines;
  for (int h = 0; h < shape.num_query_heads; ++h) {
    double dot = 0, out2 = 0, needle2 = 0;
    for (int c = 0; c < shape.head_size; ++c) {
      const double out = output_at(**step, int(kLast), h, c), needle = (*step)->value->get(kNeedle, h / group, c);
      dot += out * needle, out2 += out * out, needle2 += needle * needle;
    }
    cosines.push_back(out2 > 0 && needle2 > 0 ? dot / std::sqrt(out2 * needle2) : 0.0);
  }
  return cosines;
}

constexpr double kNeedleFound = 0.9;    // the needle's value dominates the output
constexpr double kNeedleDiluted = 0.6;  // it does not: near-uniform weights (~0.3 expected)

std::string cosine_list(const std::vector<double>& cosines) {
  std::string list;
  for (double c : cosines) list += (list.empty() ? "" : ", ") + std::to_string(c).substr(0, 5);
  return list;
}

int head_below(const std::vector<double>& cosines, double bound) {
  for (size_t h = 0; h < cosines.size(); ++h)
    if (cosines[h] < bound) return int(h);
  return -1;
}

int head_above(const std::vector<double>& cosines, double bound) {
  for (size_t h = 0; h < cosines.size(); ++h)
    if (cosines[h] >= bound) return int(h);
  return -1;
}

}  // namespace

CheckResult check_soft_cap(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "soft_cap";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  if (!(plugin->info().capability_flags & ATB_CAP_LOGITS_SOFT_CAP))
    return {name, true, "ATB_CAP_LOGITS_SOFT_CAP is not advertised (nothing to check)"};
  EngineShape shape = shape_for(plugin->info(), options);
  auto plain = needle_cosines(*plugin, shape);
  shape.soft_cap = 0.5f;  // scores within +-0.5: near-uniform weights
  auto capped = needle_cosines(*plugin, shape);
  if (!plain) return {name, false, plain.error().message()};
  if (!capped) return {name, false, capped.error().message()};
  if (int h = head_below(*plain, kNeedleFound); h >= 0)
    return {name, false,
            "soft cap: without a cap the needle query of sequence 0, token 15, head " + str(h) + " returned cosine " +
                cosine_list(*plain) + " to the needle's value; allowed >= 0.9"};
  if (int h = head_above(*capped, kNeedleDiluted); h >= 0)
    return {name, false,
            "soft cap: with logits_soft_cap 0.5 the needle (logit ~20) still took sequence 0, token 15, head " +
                str(h) + " (cosines " + cosine_list(*capped) +
                "; allowed < 0.6: capped scores make near-uniform weights)"};
  return {name, true,
          "needle cosine " + cosine_list(*plain) + " without a cap, " + cosine_list(*capped) + " with cap 0.5 " +
              device_words(options)};
}

CheckResult check_scale(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "scale";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  EngineShape shape = shape_for(plugin->info(), options);
  auto by_default = needle_cosines(*plugin, shape);  // scale 0: 1/sqrt(head_size)
  shape.scale = 1.0f / std::sqrt(float(shape.head_size));
  auto given_default = needle_cosines(*plugin, shape);
  shape.scale = 1e-3f;  // logit margin ~0.2: near-uniform weights
  auto tiny = needle_cosines(*plugin, shape);
  for (auto* run : {&by_default, &given_default, &tiny})
    if (!*run) return {name, false, run->error().message()};
  if (int h = head_below(*by_default, kNeedleFound); h >= 0)
    return {name, false,
            "scale: with scale 0 (1/sqrt(head_size)) the needle query of sequence 0, token 15, head " + str(h) +
                " returned cosine " + cosine_list(*by_default) + "; allowed >= 0.9"};
  if (int h = head_below(*given_default, kNeedleFound); h >= 0)
    return {name, false,
            "scale: with scale given as 1/sqrt(head_size) the needle query of sequence 0, token 15, head " + str(h) +
                " returned cosine " + cosine_list(*given_default) + "; allowed >= 0.9"};
  if (int h = head_above(*tiny, kNeedleDiluted); h >= 0)
    return {name, false,
            "scale: with scale 0.001 the needle still took sequence 0, token 15, head " + str(h) + " (cosines " +
                cosine_list(*tiny) + "; allowed < 0.6: the given scale must multiply q.k)"};
  return {name, true,
          "needle cosine " + cosine_list(*by_default) + " at the default scale, " + cosine_list(*given_default) +
              " given 1/sqrt(d), " + cosine_list(*tiny) + " at 0.001 " + device_words(options)};
}

CheckResult check_gqa_mapping(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "gqa_mapping";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  if (!(plugin->info().capability_flags & ATB_CAP_GQA))
    return {name, true, "ATB_CAP_GQA is not advertised (nothing to check)"};
  std::string shapes;
  for (auto [query_heads, kv_heads] : {std::pair{8, 2}, std::pair{4, 1}}) {
    EngineShape shape = shape_for(plugin->info(), options);
    shape.num_query_heads = query_heads, shape.num_kv_heads = kv_heads;
    const int group = query_heads / kv_heads;
    // Every value of KV head k is k + 1: any weights give query head h the output h / group + 1.
    const Filler inputs = [](const Place& at, int kind, int h, int c) {
      return kind == kValue ? float(h + 1) : keyed_normal(4, at.sequence_id, at.position, kind, h, c);
    };
    auto step = run_edited(*plugin, shape, {{{}, {{0, 20}}}}, inputs, nullptr);
    if (!step) return {name, false, step.error().message()};
    for (int t = 0; t < (*step)->batch.num_tokens; ++t)
      for (int h = 0; h < query_heads; ++h) {
        double mean = 0;
        for (int c = 0; c < shape.head_size; ++c) mean += output_at(**step, t, h, c);
        mean /= shape.head_size;
        if (std::fabs(mean - double(h / group + 1)) > 0.25)
          return {name, false,
                  "GQA: with " + str(query_heads) + " query / " + str(kv_heads) + " KV heads, " +
                      where(place_of((*step)->batch, t), t, h) + " read the values of KV head " +
                      str(std::lround(mean - 1)) + " (output mean " + std::to_string(mean) +
                      "); allowed: KV head h / (query heads per KV head) = " + str(h / group)};
      }
    shapes += (shapes.empty() ? "" : ", ") + str(query_heads) + "/" + str(kv_heads);
  }
  return {name, true, "query head h read KV head h / group for " + shapes + " query/KV heads " + device_words(options)};
}

CheckResult check_pages(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "pages";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  EngineShape contiguous = shape_for(plugin->info(), options), shuffled = contiguous;
  contiguous.page_shuffle_seed = 0;
  shuffled.page_shuffle_seed = 7;
  // Contiguous and shuffled, interleaved pages: the same outputs.
  const std::vector<ScriptStep> script = standard_script();
  auto in_order = MockEngine::create(*plugin, contiguous, "{}");
  if (!in_order) return {name, false, in_order.error().message()};
  auto scattered = MockEngine::create(*plugin, shuffled, "{}");
  if (!scattered) return {name, false, scattered.error().message()};
  for (size_t i = 0; i < script.size(); ++i) {
    auto a = in_order->prepare(script[i]);
    if (!a) return {name, false, a.error().message()};
    auto b = scattered->prepare(script[i]);
    if (!b) return {name, false, b.error().message()};
    fill(**a, keyed(5)), fill(**b, keyed(5));
    if (Status s = in_order->run(**a); !s) return {name, false, s.message()};
    if (Status s = scattered->run(**b); !s) return {name, false, s.message()};
    for (int t = 0; t < (*a)->batch.num_tokens; ++t)
      if (int h = first_differing_head(**a, t, **b, t); h >= 0)
        return {name, false,
                "pages: step " + str(int64_t(i)) +
                    " gave other outputs in shuffled, interleaved pages than in contiguous ones at " +
                    where(place_of((*a)->batch, t), t, h) + " (the block table must be followed)"};
  }
  // A sequence's outputs do not depend on its batch, nor on a prefill and a decode sharing a forward.
  auto together = MockEngine::create(*plugin, contiguous, "{}");
  if (!together) return {name, false, together.error().message()};
  auto apart = MockEngine::create(*plugin, contiguous, "{}");
  if (!apart) return {name, false, apart.error().message()};
  const std::vector<std::vector<ScriptStep>> steps = {{{{}, {{0, 30}, {1, 21}}}}, {{{}, {{2, 19}, {0, 1}}}}};
  for (const auto& step : steps) {
    auto joint = together->prepare(step[0]);
    if (!joint) return {name, false, joint.error().message()};
    fill(**joint, keyed(6));
    if (Status s = together->run(**joint); !s) return {name, false, s.message()};
    int first = 0;
    for (const auto& sequence : step[0].tokens) {  // each sequence alone, in its own forward
      auto alone = apart->prepare({{}, {sequence}});
      if (!alone) return {name, false, alone.error().message()};
      fill(**alone, keyed(6));
      if (Status s = apart->run(**alone); !s) return {name, false, s.message()};
      for (int t = 0; t < sequence.new_tokens; ++t)
        if (int h = first_differing_head(**joint, first + t, **alone, t); h >= 0)
          return {name, false,
                  "pages: " + where(place_of((*joint)->batch, first + t), first + t, h) +
                      " differs between a batch of " + str((*joint)->batch.num_seqs) +
                      " sequences and a forward of its own (outputs must not depend on the batch, nor on a "
                      "prefill and a decode sharing one forward)"};
      first += sequence.new_tokens;
    }
  }
  return {name, true,
          "4 scripted steps in contiguous and in shuffled pages bit-identical " + device_words(options) +
              "; two prefills, and a prefill with a decode, give each sequence the same outputs batched "
              "and alone"};
}

CheckResult check_kv_sharing(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "kv_sharing";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  if (!(plugin->info().capability_flags & ATB_CAP_KV_SHARING))
    return {name, true, "ATB_CAP_KV_SHARING is not advertised (nothing to check)"};
  EngineShape owner = shape_for(plugin->info(), options);
  owner.num_layers = 2;
  EngineShape sharer = owner;
  sharer.layer_index = 1, sharer.kv_shared_with_layer = 0;
  auto engine = MockEngine::create(*plugin, owner, "{}");
  if (!engine) return {name, false, engine.error().message()};
  auto sharing = plugin->create_backend(sharer.layer_spec(), "{}");
  if (!sharing) return {name, false, "the sharing layer was refused: " + sharing.error().message()};
  int steps = 0;
  for (const ScriptStep& script_step : standard_script()) {
    auto step = engine->prepare(script_step);
    if (!step) return {name, false, step.error().message()};
    fill(**step, keyed(8));
    if (Status s = engine->run(**step); !s) return {name, false, s.message()};
    std::vector<float> owned;
    for (int t = 0; t < (*step)->batch.num_tokens; ++t)
      for (int h = 0; h < owner.num_query_heads; ++h)
        for (int c = 0; c < owner.head_size; ++c) owned.push_back(output_at(**step, t, h, c));
    if (Status s = engine->run_through(*sharing, **step); !s) return {name, false, "the sharing layer: " + s.message()};
    size_t i = 0;
    for (int t = 0; t < (*step)->batch.num_tokens; ++t)
      for (int h = 0; h < owner.num_query_heads; ++h)
        for (int c = 0; c < owner.head_size; ++c, ++i)
          if (!same_bits(owned[i], output_at(**step, t, h, c)))
            return {name, false,
                    "KV sharing: layer 1 reading layer 0's pages gave other outputs than layer 0 on the same "
                    "queries at " +
                        where(place_of((*step)->batch, t), t, h)};
    ++steps;
  }
  return {name, true,
          "a layer sharing layer 0's cache gave its owner's outputs bit for bit over " + str(steps) +
              " scripted steps " + device_words(options)};
}

CheckResult check_numbers(const std::filesystem::path& path, const ConformanceOptions& options) {
  const std::string name = "numbers";
  auto plugin = host::Plugin::load(path);
  if (!plugin) return {name, false, plugin.error().message()};
  const EngineShape shape = shape_for(plugin->info(), options);
  auto engine = MockEngine::create(*plugin, shape, "{}");
  if (!engine) return {name, false, engine.error().message()};
  const bool compressed = (engine->spec().cache_flags & ATB_KV_CACHE_COMPRESSED) != 0;
  std::string report;
  if (!compressed) {
    // Against the f64 oracle over the very inputs forward got (rounded to the dtype).
    const double tolerance = shape.dtype == ATB_DTYPE_F32 ? 1e-4 : 1e-2;
    auto step = run_edited(*plugin, shape, {{{}, {{0, 40}, {1, 17}}}}, keyed(10), nullptr);
    if (!step) return {name, false, step.error().message()};
    const PreparedStep& s = **step;
    const int dk = shape.head_size, hk = shape.num_kv_heads, hq = shape.num_query_heads;
    const double scale = 1.0 / std::sqrt(double(dk));
    double worst = 0;
    for (int seq = 0; seq < s.batch.num_seqs; ++seq) {
      const int begin = s.batch.query_start_loc[size_t(seq)], end = s.batch.query_start_loc[size_t(seq) + 1];
      std::vector<float> keys, values;
      for (int t = begin; t < end; ++t)
        for (int h = 0; h < hk; ++h)
          for (int c = 0; c < dk; ++c) keys.push_back(s.key->get(t, h, c)), values.push_back(s.value->get(t, h, c));
      for (int t = begin; t < end; ++t) {
        std::vector<float> query;
        for (int h = 0; h < hq; ++h)
          for (int c = 0; c < dk; ++c) query.push_back(s.query->get(t, h, c));
        const auto expected = oracle_attention({hq, hk, dk, dk, 0, 0.0, scale}, keys, values, query.data(), t - begin);
        for (int h = 0; h < hq; ++h) {
          double error = 0, norm = 0;
          for (int c = 0; c < dk; ++c) {
            const double e = expected[size_t(h) * dk + c];
            error += (output_at(s, t, h, c) - e) * (output_at(s, t, h, c) - e), norm += e * e;
          }
          const double relative = std::sqrt(error / std::max(norm, 1e-30));
          worst = std::max(worst, relative);
          if (relative > tolerance)
            return {name, false,
                    "numbers: the uncompressed cache's output at " + where(place_of(s.batch, t), t, h) + " is " +
                        std::to_string(relative) + " (relative L2) from the f64 oracle; allowed " +
                        std::to_string(tolerance)};
        }
      }
    }
    char figures[96];
    std::snprintf(figures, sizeof figures, "uncompressed: within %.2e of the f64 oracle (allowed %.0e); ", worst,
                  tolerance);
    report = figures;
  }
  // Probes that survive compression: the needle, and uniform keys returning the values' mean.
  auto needle = needle_cosines(*plugin, shape);
  if (!needle) return {name, false, needle.error().message()};
  if (int h = head_below(*needle, kNeedleFound); h >= 0)
    return {name, false,
            "numbers: the needle query (one key ahead by ~20 logits) of sequence 0, token 15, head " + str(h) +
                " returned cosine " + cosine_list(*needle) + " to the needle's value; allowed >= 0.9"};
  const double mean_tolerance = compressed ? 0.25 : 1e-3;
  // Values of a common vector plus as much noise: the mean is the common vector's scale, and a
  // backend that returned one token's value would miss it by ~100%.
  const Filler uniform = [](const Place& at, int kind, int h, int c) {
    if (kind == kValue) return keyed_normal(11, 0, 0, kind, h, c) + keyed_normal(12, 0, at.position, kind, h, c);
    return kind == kKey ? keyed_normal(11, 0, 0, kind, h, c) : keyed_normal(11, 0, at.position, kind, h, c);
  };
  auto step = run_edited(*plugin, shape, {{{}, {{0, 24}}}}, uniform, nullptr);
  if (!step) return {name, false, step.error().message()};
  const int group = shape.num_query_heads / shape.num_kv_heads, last = 23;
  double worst_mean = 0;
  for (int h = 0; h < shape.num_query_heads; ++h) {
    double error = 0, norm = 0;
    for (int c = 0; c < shape.head_size; ++c) {
      double mean = 0;
      for (int p = 0; p <= last; ++p) mean += (*step)->value->get(p, h / group, c);
      mean /= last + 1;
      const double d = output_at(**step, last, h, c) - mean;
      error += d * d, norm += mean * mean;
    }
    const double relative = std::sqrt(error / std::max(norm, 1e-30));
    worst_mean = std::max(worst_mean, relative);
    if (relative > mean_tolerance)
      return {name, false,
              "numbers: with every key equal, sequence 0, token " + str(last) + ", head " + str(h) + " is " +
                  std::to_string(relative) + " (relative L2) from the mean of the values; allowed " +
                  std::to_string(mean_tolerance)};
  }
  char figures[96];
  std::snprintf(figures, sizeof figures, "equal keys within %.2e of the values' mean (allowed %.2g) ", worst_mean,
                mean_tolerance);
  return {name, true,
          report + "needle cosines " + cosine_list(*needle) + " (allowed >= 0.9); " + figures + device_words(options)};
}

}  // namespace atb::mock_host
