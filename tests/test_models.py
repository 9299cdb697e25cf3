import pytest
import torch

from vae_utils import checks, models, zoo
from vae_utils.classifier import Classifier
from vae_utils.gan import GAN

SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("arch, hidden", [("mlp", (64, 32)), ("conv", (8, 16))])
@pytest.mark.parametrize("image_shape", SHAPES)
def test_autoencoder_and_vae_shapes(arch, hidden, image_shape):
    x = torch.rand(5, *image_shape)
    ae = models.Autoencoder(image_shape, latent_dim=3, arch=arch, hidden=hidden)
    assert ae.encode(x).shape == (5, 3)
    assert ae(x).shape == (5, *image_shape)
    vae = models.VAE(image_shape, latent_dim=4, arch=arch, hidden=hidden)
    out = vae(x)
    assert out.logits.shape == (5, *image_shape)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, 4)
    samples = vae.sample(6)
    assert samples.shape == (6, *image_shape) and samples.min() >= 0 and samples.max() <= 1


def test_build_model_rebuilds_the_same_architecture_from_its_config():
    vae = models.VAE((1, 28, 28), latent_dim=5, hidden=(32, 16))
    rebuilt = zoo.build_model(vae.config)
    rebuilt.load_state_dict(vae.state_dict())  # raises if any shape differs
    assert rebuilt.config == vae.config


def test_wrong_image_shape_range_and_type_are_rejected():
    vae = models.VAE((1, 28, 28), latent_dim=2, hidden=(16, 8))
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\), got \(4, 784\)"):
        vae.encode(torch.rand(4, 784))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.encode(torch.rand(4, 1, 28, 28) * 255)
    with pytest.raises(TypeError, match="uint8"):
        vae.encode(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        vae.encode([[0.0]])


def test_latent_of_the_wrong_size_is_rejected():
    ae = models.Autoencoder((1, 28, 28), latent_dim=2, hidden=(16, 8))
    with pytest.raises(ValueError, match=r"\(B, 2\), got \(3, 5\)"):
        ae.decode(torch.zeros(3, 5))


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="arch"):
        models.VAE((1, 28, 28), 2, arch="transformer")
    with pytest.raises(ValueError, match="divisible by 4"):
        models.VAE((1, 30, 30), 2, arch="conv", hidden=(8, 16))
    with pytest.raises(ValueError, match="latent_dim"):
        models.Autoencoder((1, 28, 28), 0)
    with pytest.raises(ValueError, match="unknown model kind 'diffusion'"):
        zoo.build_model(dict(kind="diffusion", image_shape=(1, 28, 28), latent_dim=2))
    with pytest.raises(TypeError, match="latent_dim must be an int, got True"):
        models.VAE((1, 28, 28), True)
    with pytest.raises(TypeError, match="latent_dim must be an int, got 2.0"):
        models.VAE((1, 28, 28), 2.0)


def test_reparameterize_lets_gradients_reach_mu_and_logvar():
    mu = torch.zeros(4, 3, requires_grad=True)
    logvar = torch.zeros(4, 3, requires_grad=True)
    z = models.reparameterize(mu, logvar)
    (z ** 2).sum().backward()
    assert mu.grad is not None and mu.grad.abs().sum() > 0
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_reparameterize_samples_have_the_requested_mean_and_spread():
    torch.manual_seed(0)
    mu = torch.tensor([[2.0, -1.0]]).expand(200_000, 2)
    logvar = torch.log(torch.tensor([[0.25, 4.0]])).expand(200_000, 2)
    z = models.reparameterize(mu, logvar)
    assert torch.allclose(z.mean(0), torch.tensor([2.0, -1.0]), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([0.5, 2.0]), atol=0.02)


def test_count_parameters_counts_weights_and_biases():
    ae = models.Autoencoder((1, 2, 2), latent_dim=1, hidden=(3,))
    # encoder 4->3->1, decoder 1->3->4
    assert models.count_parameters(ae) == (4 * 3 + 3) + (3 * 1 + 1) + (1 * 3 + 3) + (3 * 4 + 4)


def test_conditional_vae_uses_the_label_and_rejects_bad_labels():
    torch.manual_seed(0)
    cvae = models.ConditionalVAE((1, 28, 28), latent_dim=3, n_classes=10, hidden=(32, 16))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    out = cvae(x, y)
    assert out.logits.shape == (4, 1, 28, 28) and out.mu.shape == (4, 3)
    z = torch.zeros(2, 3)
    assert not torch.equal(cvae.decode(z, torch.tensor([0, 0])), cvae.decode(z, torch.tensor([0, 7])))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        cvae.decode(z, torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="labels must be integer class indices, got dtype torch.float32"):
        cvae.decode(z, torch.tensor([0.0, 1.0]))
    rebuilt = zoo.build_model(cvae.config)
    rebuilt.load_state_dict(cvae.state_dict())


def test_gan_generator_and_discriminator_shapes():
    gan = GAN((1, 28, 28), latent_dim=5, hidden=(16, 32))
    z = torch.randn(7, 5)
    assert gan.decode(z).shape == (7, 1, 28, 28)
    assert gan.discriminate(torch.rand(7, 1, 28, 28)).shape == (7,)
    samples = gan.sample(3)
    assert samples.shape == (3, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        gan.decode(torch.randn(2, 4))
    assert zoo.build_model(gan.config).config == gan.config


def test_classifier_features_and_logits():
    classifier = Classifier()
    x = torch.rand(4, 1, 28, 28)
    assert classifier.features(x).shape == (4, classifier.num_features)
    assert classifier(x).shape == (4, 10)
    with pytest.raises(ValueError, match="shape"):
        classifier(torch.rand(4, 3, 32, 32))


def test_an_unstabilised_gan_drops_batchnorm_and_input_centring():
    stable = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
    bare = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32), stabilised=False)
    has_bn = lambda m: any(isinstance(x, torch.nn.BatchNorm1d) for x in m.generator)  # noqa: E731
    assert has_bn(stable) and not has_bn(bare)
    x = torch.rand(3, 1, 28, 28)
    stable.eval(), bare.eval()  # no dropout
    assert torch.allclose(stable.discriminate(x), stable.discriminator(2 * x - 1))
    assert torch.allclose(bare.discriminate(x), bare.discriminator(x))


def test_non_finite_images_and_codes_get_a_clear_error_naming_how_many():
    vae = models.VAE((1, 28, 28), latent_dim=2, hidden=(16, 8))
    images = torch.rand(4, 1, 28, 28)
    images[1, 0, 5, 5] = float("nan")
    images[2, 0, 5, 5] = float("inf")
    with pytest.raises(ValueError, match="2 pixel values of the images are NaN or infinite"):
        vae.encode(images)
    with pytest.raises(ValueError, match="1 values of the latent codes are NaN"):
        vae.decode(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(TypeError, match="float latent codes"):
        vae.decode(torch.zeros(1, 2, dtype=torch.long))


def test_inside_values_checked_the_models_do_not_read_values():
    """The fit loops validate a dataset once and then train without per-batch value reads."""
    vae = models.VAE((1, 4, 4), latent_dim=2, hidden=(8,))
    with checks.values_checked():
        vae.encode(torch.full((2, 1, 4, 4), 2.0))   # out of range, but not read here
        with pytest.raises(ValueError, match="shape"):
            vae.encode(torch.rand(2, 16))            # shapes are still checked
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.encode(torch.full((2, 1, 4, 4), 2.0))


def test_prior_codes_come_from_a_cpu_generator_and_repeat_with_its_seed():
    a = models.prior_codes(5, 3, torch.Generator().manual_seed(4))
    b = models.prior_codes(5, 3, torch.Generator().manual_seed(4))
    assert a.device.type == "cpu" and a.shape == (5, 3) and torch.equal(a, b)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        models.prior_codes(0, 3)


def test_a_gan_samples_from_a_running_average_of_its_generator_weights():
    torch.manual_seed(0)
    gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32), average_decay=0.75)
    assert zoo.build_model(gan.config).config == gan.config
    before = [p.clone() for p in gan.generator_average.parameters()]
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(1.0)
        gan.generator[1].running_mean.fill_(3.0)     # the trained G's statistics ...
    gan.update_average()
    for old, new in zip(before, gan.generator_average.parameters()):
        assert torch.allclose(new, old + 0.25)       # a quarter of the way to the trained G
    assert not any(p.requires_grad for p in gan.generator_average.parameters())
    assert torch.equal(gan.generator_average[1].running_mean, torch.zeros(16))  # ... not copied
    codes = torch.randn(300, 4)
    gan.refresh_average_statistics(codes, batch_size=100)
    with torch.no_grad():
        activations = gan.generator_average[0](codes)   # what the average's first BatchNorm sees
    assert torch.allclose(gan.generator_average[1].running_mean, activations.mean(0), atol=1e-5)
    z = torch.randn(5, 4)
    gan.eval()
    assert torch.equal(gan.decode(z, trained=True), gan.generator(z))    # the trained G
    assert torch.equal(gan.decode(z), gan.generator_average(z))          # sampling: the average
    gan.train()
    assert torch.equal(gan.decode(z), gan.generator_average(z))          # in either mode
    assert not torch.equal(gan.generator(z), gan.generator_average(z))
    plain = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
    assert plain.generator_average is None
    plain.update_average()                                        # a no-op without an average
    with pytest.raises(ValueError, match="average_decay must be < 1"):
        GAN((1, 28, 28), latent_dim=4, average_decay=1.0)
