/* WebRTC AudioProcessing behind the C interface of apm.h: the project's
 * only C++ file, kept to configuration and calls into the library. */
#include "media/apm.h"

#include <webrtc/modules/audio_processing/include/audio_processing.h>

#include <new>

struct apm {
  webrtc::AudioProcessing *ap;
  webrtc::StreamConfig cfg;
  bool aec, ns, agc;
};

extern "C" apm_options_t apm_options_default(void) {
  apm_options_t o;
  o.delay_agnostic = true;
  o.extended_filter = true;
  o.aec_level = 1; /* kModerateSuppression */
  o.ns_level = 2;  /* kHigh */
  o.agc_target_dbfs = 9;
  o.agc_gain_db = 30;
  return o;
}

extern "C" apm_t *apm_new(const apm_options_t *o) {
  apm_t *a = new (std::nothrow) apm;
  if (!a)
    return nullptr;
  webrtc::Config config;
  config.Set<webrtc::DelayAgnostic>(
      new webrtc::DelayAgnostic(o->delay_agnostic));
  config.Set<webrtc::ExtendedFilter>(
      new webrtc::ExtendedFilter(o->extended_filter));
  /* The "experimental" AGC drives an analog microphone volume we do not
   * control; the digital one levels the samples themselves. */
  config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
  a->ap = webrtc::AudioProcessing::Create(config);
  a->cfg = webrtc::StreamConfig(APM_RATE, 1, false);
  a->aec = a->ns = a->agc = false;
  if (!a->ap) {
    delete a;
    return nullptr;
  }
  webrtc::ProcessingConfig pc;
  for (webrtc::StreamConfig &sc : pc.streams)
    sc = a->cfg;
  webrtc::EchoCancellation *ec = a->ap->echo_cancellation();
  webrtc::GainControl *gc = a->ap->gain_control();
  static const webrtc::NoiseSuppression::Level levels[] = {
      webrtc::NoiseSuppression::kLow, webrtc::NoiseSuppression::kModerate,
      webrtc::NoiseSuppression::kHigh, webrtc::NoiseSuppression::kVeryHigh};
  static const webrtc::EchoCancellation::SuppressionLevel aec_levels[] = {
      webrtc::EchoCancellation::kLowSuppression,
      webrtc::EchoCancellation::kModerateSuppression,
      webrtc::EchoCancellation::kHighSuppression};
  int ns = o->ns_level < 0 ? 0 : o->ns_level > 3 ? 3 : o->ns_level;
  int aec = o->aec_level < 0 ? 0 : o->aec_level > 2 ? 2 : o->aec_level;
  if (a->ap->Initialize(pc) != 0 ||
      ec->set_suppression_level(aec_levels[aec]) != 0 ||
      ec->enable_drift_compensation(false) != 0 ||
      ec->enable_metrics(true) != 0 || ec->enable_delay_logging(true) != 0 ||
      a->ap->noise_suppression()->set_level(levels[ns]) != 0 ||
      gc->set_mode(webrtc::GainControl::kAdaptiveDigital) != 0 ||
      gc->set_target_level_dbfs(o->agc_target_dbfs) != 0 ||
      gc->set_compression_gain_db(o->agc_gain_db) != 0 ||
      gc->enable_limiter(true) != 0) {
    apm_free(a);
    return nullptr;
  }
  return a;
}

extern "C" void apm_free(apm_t *a) {
  if (!a)
    return;
  delete a->ap;
  delete a;
}

extern "C" int apm_enable(apm_t *a, bool aec, bool ns, bool agc) {
  webrtc::AudioProcessing *ap = a->ap;
  int r = 0;
  if (aec != a->aec)
    r |= ap->echo_cancellation()->Enable(aec);
  if (ns != a->ns)
    r |= ap->noise_suppression()->Enable(ns);
  if (agc != a->agc)
    r |= ap->gain_control()->Enable(agc);
  r |= ap->high_pass_filter()->Enable(aec || ns || agc);
  a->aec = aec;
  a->ns = ns;
  a->agc = agc;
  return r == 0 ? 0 : -1;
}

extern "C" int apm_render(apm_t *a, const float *block) {
  const float *src[1] = {block};
  float out[APM_BLOCK];
  float *dst[1] = {out};
  return a->ap->ProcessReverseStream(src, a->cfg, a->cfg, dst) == 0 ? 0 : -1;
}

extern "C" int apm_capture(apm_t *a, float *block, int delay_ms) {
  /* Outside 0..500 the library refuses the value (and clamps it). */
  a->ap->set_stream_delay_ms(delay_ms < 0     ? 0
                             : delay_ms > 500 ? 500
                                              : delay_ms);
  float *ch[1] = {block};
  int r = a->ap->ProcessStream(ch, a->cfg, a->cfg, ch);
  return r == 0 || r == webrtc::AudioProcessing::kBadStreamParameterWarning
             ? 0
             : -1;
}

extern "C" void apm_get_metrics(apm_t *a, apm_metrics_t *m) {
  *m = apm_metrics_t();
  m->delay_ms = -1;
  m->speech_prob = -1;
  webrtc::EchoCancellation *ec = a->ap->echo_cancellation();
  if (a->ns)
    m->speech_prob = a->ap->noise_suppression()->speech_probability();
  if (!a->aec)
    return;
  webrtc::EchoCancellation::Metrics em;
  /* -100 (the library's "offset level") means no figure yet: none since
   * the start, or since the canceller reset its measurement. */
  if (ec->GetMetrics(&em) == 0 &&
      em.echo_return_loss_enhancement.average > -100) {
    m->valid = true;
    m->erle_db = em.echo_return_loss_enhancement.average;
    m->erl_db = em.echo_return_loss.average;
  }
  int median = -1, std = -1;
  float poor = 0;
  if (ec->GetDelayMetrics(&median, &std, &poor) == 0 && median >= 0) {
    m->delay_ms = median;
    m->delay_std_ms = std;
  }
  m->echo = ec->stream_has_echo();
}
