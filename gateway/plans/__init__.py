"""Plans (套餐): rate limits and daily quotas that API keys are issued on."""
