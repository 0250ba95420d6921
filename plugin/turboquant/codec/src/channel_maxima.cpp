#include <tq/channel_maxima.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

namespace tq {
namespace {

constexpr std::string_view kFormat = "atb-channel-maxima";
constexpr int kVersion = 1;
constexpr size_t kMaxFileBytes = size_t(1) << 30;

// [layer][KV head][channel] of `values`, shaped as `maxima`.
nlohmann::json nested(const ChannelMaxima& maxima, const std::vector<float>& values) {
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < maxima.layers; ++l) {
    nlohmann::json heads = nlohmann::json::array();
    for (int h = 0; h < maxima.kv_heads; ++h) {
      const float* row = values.data() + (size_t(l) * size_t(maxima.kv_heads) + size_t(h)) * size_t(maxima.head_size);
      heads.push_back(std::vector<float>(row, row + maxima.head_size));
    }
    layers.push_back(std::move(heads));
  }
  return layers;
}

// name[index], built by appending (GCC 12 misreports chained + of temporaries: -Wrestrict).
std::string indexed(std::string_view name, int index) {
  std::string text(name);
  text.append("[").append(std::to_string(index)).append("]");
  return text;
}

atb::Status field_error(const std::string& path, const std::string& field, const std::string& value,
                        const std::string& allowed) {
  return atb::Status::invalid("smoothing_file " + path + ": " + field + " = " + value.substr(0, 120) +
                              "; allowed: " + allowed);
}

atb::Status read_dimension(const nlohmann::json& json, const std::string& path, const char* field, int max,
                           int& value) {
  const auto found = json.find(field);
  if (found == json.end() || !found->is_number_integer() || found->get<int64_t>() < 1 || found->get<int64_t>() > max)
    return field_error(path, field, found == json.end() ? "(missing)" : found->dump(),
                       "an integer from 1 to " + std::to_string(max));
  value = found->get<int>();
  return atb::Status::ok();
}

// Reads field [L][H][D] into `values` (sized by the caller); maxima are >= 0, means any finite value.
atb::Status read_rows(const nlohmann::json& json, const std::string& path, const char* field, bool non_negative,
                      const ChannelMaxima& maxima, std::vector<float>& values) {
  const auto found = json.find(field);
  const std::string shape = indexed(indexed(indexed("arrays ", maxima.layers), maxima.kv_heads), maxima.head_size);
  if (found == json.end() || !found->is_array() || found->size() != size_t(maxima.layers))
    return field_error(path, field, found == json.end() ? "(missing)" : "an array of " + std::to_string(found->size()),
                       shape);
  for (int l = 0; l < maxima.layers; ++l) {
    const nlohmann::json& heads = (*found)[size_t(l)];
    const std::string at = indexed(field, l);
    if (!heads.is_array() || heads.size() != size_t(maxima.kv_heads))
      return field_error(path, at, heads.dump(), std::to_string(maxima.kv_heads) + " KV heads");
    for (int h = 0; h < maxima.kv_heads; ++h) {
      const nlohmann::json& channels = heads[size_t(h)];
      const std::string row_at = indexed(at, h);
      if (!channels.is_array() || channels.size() != size_t(maxima.head_size))
        return field_error(path, row_at, channels.dump(), std::to_string(maxima.head_size) + " channels");
      float* row = values.data() + (size_t(l) * size_t(maxima.kv_heads) + size_t(h)) * size_t(maxima.head_size);
      for (int j = 0; j < maxima.head_size; ++j) {
        const nlohmann::json& value = channels[size_t(j)];
        if (!value.is_number() || !std::isfinite(value.get<double>()) || std::fabs(value.get<double>()) > 3.0e38 ||
            (non_negative && value.get<double>() < 0))
          return field_error(path, indexed(row_at, j), value.dump(),
                             non_negative ? "a finite number >= 0" : "a finite number");
        row[j] = value.get<float>();
      }
    }
  }
  return atb::Status::ok();
}

}  // namespace

ChannelMaxima::ChannelMaxima(int layers_, int kv_heads_, int head_size_)
    : layers(layers_),
      kv_heads(kv_heads_),
      head_size(head_size_),
      key(size_t(layers_) * size_t(kv_heads_) * size_t(head_size_), 0.0f),
      value(key.size(), 0.0f),
      key_sum(key.size(), 0.0),
      value_sum(key.size(), 0.0),
      key_rows(size_t(layers_) * size_t(kv_heads_), 0),
      value_rows(key_rows.size(), 0) {}

void ChannelMaxima::observe(Role role, int layer, int kv_head, const float* x) {
  float* row = this->row(role, layer, kv_head);
  bool finite = true;
  for (int j = 0; j < head_size; ++j) {
    finite = finite && std::isfinite(x[j]);
    if (std::isfinite(x[j]) && std::fabs(x[j]) > row[j]) row[j] = std::fabs(x[j]);
  }
  if (!finite) return;
  const size_t at = size_t(layer) * size_t(kv_heads) + size_t(kv_head);
  double* sums = (role == Role::key ? key_sum : value_sum).data() + at * size_t(head_size);
  for (int j = 0; j < head_size; ++j) sums[j] += double(x[j]);
  ++(role == Role::key ? key_rows : value_rows)[at];
}

void ChannelMaxima::finish_means() {
  for (const Role role : {Role::key, Role::value}) {
    const std::vector<double>& sums = role == Role::key ? key_sum : value_sum;
    const std::vector<int64_t>& rows = role == Role::key ? key_rows : value_rows;
    std::vector<float>& means = role == Role::key ? key_mean : value_mean;
    means.assign(sums.size(), 0.0f);
    for (size_t i = 0; i < sums.size(); ++i) {
      const int64_t count = rows[i / size_t(head_size)];
      if (count > 0) means[i] = float(sums[i] / double(count));
    }
  }
}

std::string channel_maxima_json(const ChannelMaxima& maxima, std::string_view source) {
  nlohmann::json json = {{"format", kFormat},
                         {"version", kVersion},
                         {"source", source},
                         {"layers", maxima.layers},
                         {"kv_heads", maxima.kv_heads},
                         {"head_size", maxima.head_size},
                         {"key", nested(maxima, maxima.key)},
                         {"value", nested(maxima, maxima.value)}};
  if (!maxima.key_mean.empty()) json["key_mean"] = nested(maxima, maxima.key_mean);
  if (!maxima.value_mean.empty()) json["value_mean"] = nested(maxima, maxima.value_mean);
  return json.dump() + "\n";
}

atb::Expected<ChannelMaxima> parse_channel_maxima(std::string_view text, const std::string& path) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return atb::Status::invalid("smoothing_file " + path + ": not a JSON object (written by tq calibrate)");
  const auto format = json.find("format");
  if (format == json.end() || *format != kFormat)
    return field_error(path, "format", format == json.end() ? "(missing)" : format->dump(),
                       "\"" + std::string(kFormat) + "\"");
  const auto version = json.find("version");
  if (version == json.end() || *version != kVersion)
    return field_error(path, "version", version == json.end() ? "(missing)" : version->dump(),
                       std::to_string(kVersion));
  int layers = 0, kv_heads = 0, head_size = 0;
  ATB_RETURN_IF_ERROR(read_dimension(json, path, "layers", 1 << 16, layers));
  ATB_RETURN_IF_ERROR(read_dimension(json, path, "kv_heads", 1 << 16, kv_heads));
  ATB_RETURN_IF_ERROR(read_dimension(json, path, "head_size", 1024, head_size));
  if (double(layers) * kv_heads * head_size > double(1 << 26))
    return field_error(path, "layers x kv_heads x head_size", std::to_string(double(layers) * kv_heads * head_size),
                       "at most 2^26 channels");
  ChannelMaxima maxima(layers, kv_heads, head_size);
  ATB_RETURN_IF_ERROR(read_rows(json, path, "key", true, maxima, maxima.key));
  ATB_RETURN_IF_ERROR(read_rows(json, path, "value", true, maxima, maxima.value));
  for (const auto& [field, means] :
       {std::pair{"key_mean", &maxima.key_mean}, std::pair{"value_mean", &maxima.value_mean}}) {
    if (!json.contains(field)) continue;
    means->assign(maxima.key.size(), 0.0f);
    ATB_RETURN_IF_ERROR(read_rows(json, path, field, false, maxima, *means));
  }
  return maxima;
}

atb::Expected<ChannelMaxima> read_channel_maxima(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return atb::Status::invalid("smoothing_file " + path + ": cannot be read");
  std::stringstream text;
  text << file.rdbuf();
  if (text.str().size() > kMaxFileBytes) return atb::Status::invalid("smoothing_file " + path + ": larger than 1 GiB");
  return parse_channel_maxima(text.str(), path);
}

namespace {

atb::Expected<std::vector<float>> layer_rows(const ChannelMaxima& maxima, const std::vector<float>& values,
                                             const std::string& path, int layer, int first_global_kv_head, int kv_heads,
                                             int head_size) {
  if (layer >= maxima.layers)
    return atb::Status::invalid("smoothing_file " + path + " holds " + std::to_string(maxima.layers) +
                                " layers; this layer's cache is layer " + std::to_string(layer));
  if (first_global_kv_head + kv_heads > maxima.kv_heads)
    return atb::Status::invalid("smoothing_file " + path + " holds " + std::to_string(maxima.kv_heads) +
                                " KV heads; this layer needs global heads " + std::to_string(first_global_kv_head) +
                                " .. " + std::to_string(first_global_kv_head + kv_heads - 1));
  if (head_size != maxima.head_size)
    return atb::Status::invalid("smoothing_file " + path + " has head_size " + std::to_string(maxima.head_size) +
                                "; this layer's is " + std::to_string(head_size));
  const float* first =
      values.data() + (size_t(layer) * size_t(maxima.kv_heads) + size_t(first_global_kv_head)) * size_t(head_size);
  return std::vector<float>(first, first + size_t(kv_heads) * size_t(head_size));
}

}  // namespace

atb::Expected<std::vector<float>> layer_maxima(const ChannelMaxima& maxima, const std::string& path, Role role,
                                               int layer, int first_global_kv_head, int kv_heads, int head_size) {
  return layer_rows(maxima, role == Role::key ? maxima.key : maxima.value, path, layer, first_global_kv_head, kv_heads,
                    head_size);
}

atb::Expected<std::vector<float>> layer_means(const ChannelMaxima& maxima, const std::string& path, Role role,
                                              int layer, int first_global_kv_head, int kv_heads, int head_size) {
  const std::vector<float>& means = role == Role::key ? maxima.key_mean : maxima.value_mean;
  if (means.empty())
    return atb::Status::invalid("smoothing_file " + path + " has no " +
                                (role == Role::key ? "key_mean" : "value_mean") +
                                " (channel means, written by tq calibrate since centering); allowed with it: " +
                                (role == Role::key ? "k_centering" : "v_centering") + " = false");
  return layer_rows(maxima, means, path, layer, first_global_kv_head, kv_heads, head_size);
}

}  // namespace tq
