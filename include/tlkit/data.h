#pragma once
// tlkit::data: datasets (image folders, CIFAR-10, IDX), transforms and the threaded loader.

#include <tlkit/data/auto_augment.h>
#include <tlkit/data/cifar10.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/idx.h>
#include <tlkit/data/image_folder.h>
#include <tlkit/data/image_io.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/random.h>
#include <tlkit/data/random_erasing.h>
#include <tlkit/data/subset.h>
#include <tlkit/data/transforms.h>
#include <tlkit/data/tta.h>
